"""Spectral collapse: D's weight spectra narrowing, the precursor of mode collapse."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import torch
from torch import nn

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector, Finding


def weight_matrices(network: nn.Module) -> dict[str, torch.Tensor]:
    """The weight of each conv and linear layer as a matrix (out, in * kernel), by layer name.

    Under PyTorch's spectral-norm parametrization the weight read here is the normalised one.
    """
    matrices = {}
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            weight = module.weight.detach()
            matrices[name] = weight.reshape(weight.shape[0], -1)
    return matrices


def spectral_spread(matrix: torch.Tensor, top: int = 8) -> float:
    """The mean of singular values 2 .. ``top`` over the largest: how far a layer's spectrum
    is from rank one. SR-GAN (Liu et al. 2019) saw these values drop sharply, while the
    largest one stays, just before mode collapse; spectral norm pins the largest at 1, so the
    ratio reads the same with and without it."""
    values = torch.linalg.svdvals(matrix.float())[:top]
    if len(values) < 2 or values[0] <= 0:
        return 0.0
    return float(values[1:].mean() / values[0])


class SpectralCollapse(Detector):
    """The spectra of D's layers collapse toward rank one (SR-GAN's spectral collapse).

    Every ``every`` iterations it computes, for each conv and linear layer of D, the
    :func:`spectral_spread` of its weight, and keeps each layer's highest value so far. It
    raises an alarm when on ``patience`` consecutive checks some layer's spread is under
    ``min_ratio`` times its own highest: the layer's singular values beyond the first have
    fallen, which Liu et al. ("Spectral regularization for combating mode collapse in GANs",
    2019) observed just before G collapsed. In a hand-written loop, feed :meth:`observe`
    ``{"spectral_spread/<layer>": value, ...}`` from :func:`spectral_spread`.

    ``min_ratio`` defaults to a quarter: D's spectra narrow in healthy runs too, by up to half
    (the last hidden layer of ``recipes/ring8_tricks.yaml``'s D: 0.73 to 0.33 while G learns
    all eight modes), so only a steeper fall is flagged. No run of the failure zoo showed
    one after the detector's first check, so this detector is a watch on conv Ds (SR-GAN's
    setting), not one the zoo has scored.
    """

    severity = "warning"
    remedy = (
        "spectral regularization of D (spectral norm), a gradient penalty, a lower D learning "
        "rate; watch for mode collapse next."
    )

    def __init__(
        self,
        min_ratio: float = 0.25,
        every: int = 100,
        patience: int = 3,
        top: int = 8,
        action: str = "warn",
        warmup: int = 500,
        cooldown: int = 2000,
        remedy: str | None = None,
        rollback_every: int = 200,
    ) -> None:
        super().__init__(
            action=action,
            warmup=warmup,
            cooldown=cooldown,
            remedy=remedy,
            rollback_every=rollback_every,
        )
        if not 0 < min_ratio < 1 or every < 1 or patience < 1 or top < 2:
            raise ConfigError(
                "SpectralCollapse needs 0 < min_ratio < 1, every >= 1, patience >= 1 and top >= 2 "
                f"(got {min_ratio}, {every}, {patience}, {top})."
            )
        self.min_ratio = min_ratio
        self.every = every
        self.patience = patience
        self.top = top
        self.highest: dict[str, float] = {}
        self.collapsed: deque[str] = deque(maxlen=patience)

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        measured: dict[str, float] = {}
        # ctx.step + 1: the iterations done once this one is (what observe is given).
        if (ctx.step + 1) % self.every == 0:
            for name, matrix in weight_matrices(ctx.discriminator).items():
                if min(matrix.shape) >= 2:  # an output layer to one logit has no spread
                    measured[f"spectral_spread/{name}"] = spectral_spread(matrix, self.top)
        return measured

    def check(self, step: int, signals: Mapping[str, float]) -> Finding | None:
        spreads = {
            name.split("/", 1)[1]: value
            for name, value in signals.items()
            if name.startswith("spectral_spread/")
        }
        if not spreads:
            return None  # not a checking step
        fallen = [
            name
            for name, value in spreads.items()
            if name in self.highest and value < self.min_ratio * self.highest[name]
        ]
        for name, value in spreads.items():
            self.highest[name] = max(value, self.highest.get(name, value))
        self.collapsed.append(",".join(fallen))
        if len(self.collapsed) < self.patience:
            return None
        persistent = set.intersection(*(set(e.split(",")) for e in self.collapsed)) - {""}
        if not persistent:
            return None
        layer = sorted(persistent)[0]
        return Finding(
            f"the spectrum of D's layer {layer!r} has collapsed on {self.patience} checks: "
            f"singular values 2-{self.top} average {spreads[layer]:.3f} of the largest, down "
            f"from {self.highest[layer]:.3f}.",
            {"spectral_spread": spreads[layer], "highest_spread": self.highest[layer]},
        )

    def history_state(self) -> dict:
        return {**super().history_state(), "highest": dict(self.highest)}

    def load_history_state(self, state: dict) -> None:
        state = dict(state)
        self.highest = dict(state.pop("highest", {}))
        super().load_history_state(state)
