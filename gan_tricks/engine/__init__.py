"""The adversarial iteration as a plain object, for any training loop; no Lightning.

:class:`GANEngine` runs one GAN iteration over your own networks and optimizers with the
toolkit's tricks and detectors; :class:`StepContext` is what those receive, and
:class:`StepSignals` what a step measured. :class:`RunRecorder` writes the run folder
``gan-tricks report`` reads.
"""

from gan_tricks.engine.adversarial import GANEngine, flat_logits, gradient_norm, unique_names
from gan_tricks.engine.context import PHASES, DataSpec, NetworkHolder, Networks, Phase, StepContext
from gan_tricks.engine.recorder import RunRecorder, send_alarm_to_wandb, write_alarm
from gan_tricks.engine.signals import SIGNALS, StepSignals

__all__ = [
    "PHASES",
    "SIGNALS",
    "DataSpec",
    "GANEngine",
    "NetworkHolder",
    "Networks",
    "Phase",
    "RunRecorder",
    "StepContext",
    "StepSignals",
    "flat_logits",
    "gradient_norm",
    "send_alarm_to_wandb",
    "unique_names",
    "write_alarm",
]
