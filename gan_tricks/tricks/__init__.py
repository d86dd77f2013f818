"""Stability tricks as plain objects: thin toggles over ``gan_tricks.functional``.

Each one plugs into a :class:`~gan_tricks.engine.GANEngine` (``tricks=[...]``) in any
training loop, and into a recipe under ``model.tricks`` (``class_path:
gan_tricks.tricks.<Name>``); it keeps its state in the engine's checkpoints and says before
training starts, in one sentence, when it cannot work with the rest of the run.
"""

from gan_tricks.tricks.augment import (
    AdaptiveAugment,
    AdaptivePseudoAugment,
    ConsistencyRegularization,
    DiffAugment,
)
from gan_tricks.tricks.base import PHASES, Trick
from gan_tricks.tricks.constraints import GradientNormalization, SpectralNorm, WeightClipping
from gan_tricks.tricks.ema import GeneratorEMA
from gan_tricks.tricks.input_range import InputRangeCheck
from gan_tricks.tricks.labels import LabelFlipping, LabelSmoothing
from gan_tricks.tricks.mixture import MixtureClassifier
from gan_tricks.tricks.noise import GeneratorLayerNoise, InstanceNoise
from gan_tricks.tricks.packing import Packing
from gan_tricks.tricks.penalties import ApproximateR1, GradientPenalty, LeCam
from gan_tricks.tricks.replay import ExperienceReplay
from gan_tricks.tricks.schedule import TTUR, NCritic, Schedule

__all__ = [
    "PHASES",
    "TTUR",
    "AdaptiveAugment",
    "AdaptivePseudoAugment",
    "ApproximateR1",
    "ConsistencyRegularization",
    "DiffAugment",
    "ExperienceReplay",
    "GeneratorEMA",
    "GeneratorLayerNoise",
    "GradientNormalization",
    "GradientPenalty",
    "InputRangeCheck",
    "InstanceNoise",
    "LabelFlipping",
    "LabelSmoothing",
    "LeCam",
    "MixtureClassifier",
    "NCritic",
    "Packing",
    "Schedule",
    "SpectralNorm",
    "Trick",
    "WeightClipping",
]
