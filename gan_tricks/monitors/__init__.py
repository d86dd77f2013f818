"""Failure detectors: a failing GAN announces itself.

Each detector is a Lightning callback (``trainer.callbacks`` in a recipe) that reads the step
signals the module records and raises an :class:`Alarm` with a severity, the step, the signals
that triggered it and a one-line explanation with a remedy. Alarms go to the console,
``alarms.jsonl`` in the run folder and W&B. In a hand-written loop, call a detector's
``observe(step, signals)`` with plain floats.
"""

from gan_tricks.monitors.base import ALARMS_FILE, Alarm, Detector, read_alarms
from gan_tricks.monitors.diversity import ModeCollapse, diversity_signals
from gan_tricks.monitors.fooling import GeneratorFoolingWithGarbage, moment_gap
from gan_tricks.monitors.gradients import GradientPathology, layer_gradient_norms
from gan_tricks.monitors.losses import DiscriminatorOverpowering, LossOscillation, NonFinite
from gan_tricks.monitors.overfitting import DiscriminatorOverfitting, sign_mean
from gan_tricks.monitors.quality import QualityProbe, read_quality
from gan_tricks.monitors.spectra import SpectralCollapse, spectral_spread, weight_matrices

__all__ = [
    "ALARMS_FILE",
    "Alarm",
    "Detector",
    "DiscriminatorOverfitting",
    "DiscriminatorOverpowering",
    "GeneratorFoolingWithGarbage",
    "GradientPathology",
    "LossOscillation",
    "ModeCollapse",
    "NonFinite",
    "QualityProbe",
    "SpectralCollapse",
    "diversity_signals",
    "layer_gradient_norms",
    "moment_gap",
    "read_alarms",
    "read_quality",
    "sign_mean",
    "spectral_spread",
    "weight_matrices",
]
