"""Failure detectors: a failing GAN announces itself.

A detector is a plain object that works in any training loop, with no framework: give it to
a :class:`~gan_tricks.engine.GANEngine` (``GANEngine(detectors=[...])``), to the Lightning
adapter (``GANModule``'s ``detectors``), or to a recipe (``model.detectors``). After every
iteration the engine hands it the step's signals (:data:`gan_tricks.engine.SIGNALS`, D's
outputs as logits) plus what it measures itself from the step context (sample diversity,
per-layer gradient norms, D's spectra); a detector whose ``needs`` are missing says so in one
sentence. On a failure it raises an :class:`Alarm` with a severity, the step, the signals that
triggered it and a one-line explanation with a remedy; the engine takes the detector's action
(``warn``, ``stop``: ``engine.should_stop``, ``rollback``, ``remediate``) and passes the alarm
to its ``alarm_handlers``: the console, ``alarms.jsonl`` in the run folder and W&B under
``gan-tricks fit`` or a :class:`~gan_tricks.engine.RunRecorder`. A loop with its own
adversarial step calls ``engine.report(signals, step=...)``, which returns the alarms; on its
own, a detector's ``observe(step, signals)`` takes plain floats.

``QualityProbe``, the failure zoo's ground truth, is a Lightning callback:
:class:`gan_tricks.lightning.QualityProbe`.
"""

from gan_tricks.monitors.base import ALARMS_FILE, Alarm, Detector, read_alarms
from gan_tricks.monitors.diversity import ModeCollapse, diversity_signals
from gan_tricks.monitors.fooling import GeneratorFoolingWithGarbage, moment_gap
from gan_tricks.monitors.gradients import GradientPathology, layer_gradient_norms
from gan_tricks.monitors.losses import DiscriminatorOverpowering, LossOscillation, NonFinite
from gan_tricks.monitors.overfitting import DiscriminatorOverfitting, sign_mean
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
    "SpectralCollapse",
    "diversity_signals",
    "layer_gradient_norms",
    "moment_gap",
    "read_alarms",
    "sign_mean",
    "spectral_spread",
    "weight_matrices",
]
