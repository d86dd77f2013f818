"""The step's signals: one typed record per iteration, what loggers and detectors read."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

# The names of the flat view (``StepSignals.as_dict``), the one vocabulary of logs, detectors
# and a hand-written loop's own signals. D's outputs are logits, before any sigmoid.
SIGNAL_DOCS = {
    "d_loss": "D's loss of the last D step, penalties included",
    "g_loss": "G's loss, penalties included",
    "d_real": "mean of D's logits on the real batch (last D step)",
    "d_fake": "mean of D's logits on the fake batch (last D step)",
    "d_grad_norm": "total L2 norm of D's gradients before its last step",
    "g_grad_norm": "total L2 norm of G's gradients before its step",
    "d_steps": "D steps taken in this iteration",
}
SIGNALS = tuple(SIGNAL_DOCS)
D_PENALTY_PREFIX = "d_penalty/"
G_PENALTY_PREFIX = "g_penalty/"

Scalar = float | Tensor


@dataclass
class StepSignals:
    """What one iteration measured. Tensors stay on the device (no sync) until read.

    Attributes:
        d_loss, g_loss: the losses, penalties included.
        d_real, d_fake: mean of D's logits on the real and the fake batch of the last D step.
        d_steps: D steps taken.
        d_grad_norm, g_grad_norm: gradient norms, when asked for (else None).
        d_penalties, g_penalties: each trick's extra loss term by trick name; a term some
            steps skip (a lazy penalty) reads 0 on those steps.
        logged: what tricks recorded (``StepContext.log``), by name.
        measured: what detectors computed beyond these (diversity, layer norms), by name.
    """

    d_loss: Scalar
    g_loss: Scalar
    d_real: Scalar
    d_fake: Scalar
    d_steps: int = 1
    d_grad_norm: Scalar | None = None
    g_grad_norm: Scalar | None = None
    d_penalties: dict[str, Scalar] = field(default_factory=dict)
    g_penalties: dict[str, Scalar] = field(default_factory=dict)
    logged: dict[str, Scalar] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Scalar]:
        """The flat view: the names of :data:`SIGNALS`, ``d_penalty/<trick>``,
        ``g_penalty/<trick>`` and the tricks' logged values (``measured`` stays apart)."""
        flat: dict[str, Scalar] = {
            "d_loss": self.d_loss,
            "g_loss": self.g_loss,
            "d_real": self.d_real,
            "d_fake": self.d_fake,
            "d_steps": float(self.d_steps),
        }
        if self.d_grad_norm is not None:
            flat["d_grad_norm"] = self.d_grad_norm
        if self.g_grad_norm is not None:
            flat["g_grad_norm"] = self.g_grad_norm
        flat.update({D_PENALTY_PREFIX + name: v for name, v in self.d_penalties.items()})
        flat.update({G_PENALTY_PREFIX + name: v for name, v in self.g_penalties.items()})
        flat.update(self.logged)
        return flat

    def floats(self) -> dict[str, float]:
        """:meth:`as_dict` as plain floats (one device sync per value on a GPU)."""
        return {name: float(value) for name, value in self.as_dict().items()}
