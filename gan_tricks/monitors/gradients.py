"""Gradients that vanish or explode, per network and per layer."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector, Finding

NETWORKS = ("generator", "discriminator")


def layer_gradient_norms(network: nn.Module) -> dict[str, float]:
    """The L2 norm of each parameter's gradient (parameters without one are left out)."""
    named = [(name, p.grad) for name, p in network.named_parameters() if p.grad is not None]
    if not named:
        return {}
    norms = torch._foreach_norm([grad.detach() for _, grad in named])
    return dict(zip((name for name, _ in named), torch.stack(norms).tolist(), strict=True))


class GradientPathology(Detector):
    """Vanishing or exploding gradients, per network and per layer.

    After each iteration it takes the gradient norm of every parameter of G and of D (the
    gradients of the last G step and of the last D step, which both networks still hold) and
    records, per network, the largest layer norm. It raises an alarm when a network's largest
    layer norm is over ``exploding_above`` (ganhacks #10 names norms over 100) or not finite
    for ``explode_patience`` consecutive steps (an explosion turns to NaN within a few), or
    when its total norm is under ``vanishing_below`` for ``patience`` consecutive steps. In a
    hand-written loop, feed :meth:`observe` the signals ``{g,d}_grad_norm`` and
    ``{g,d}_grad_max_layer`` yourself (see :func:`layer_gradient_norms`).
    """

    remedies: ClassVar[dict[str, str]] = {
        "exploding": "lower the learning rate, add a gradient penalty or spectral norm, or clip "
        "gradients.",
        "vanishing": "use the nonsaturating loss, LeakyReLU, residual blocks, and keep D from "
        "winning (label smoothing, instance noise).",
    }

    def __init__(
        self,
        exploding_above: float = 100.0,
        vanishing_below: float = 1e-7,
        patience: int = 20,
        explode_patience: int = 3,
        action: str = "warn",
        warmup: int = 100,
        cooldown: int = 1000,
    ) -> None:
        super().__init__(action=action, warmup=warmup, cooldown=cooldown)
        if not exploding_above > vanishing_below >= 0 or patience < 1 or explode_patience < 1:
            raise ConfigError(
                "GradientPathology needs exploding_above > vanishing_below >= 0 and both "
                f"patiences >= 1 (got {exploding_above}, {vanishing_below}, {patience}, "
                f"{explode_patience})."
            )
        self.exploding_above = exploding_above
        self.vanishing_below = vanishing_below
        self.patience = patience
        self.explode_patience = explode_patience
        self.exploding: deque[str] = deque(maxlen=explode_patience)
        self.vanishing: deque[str] = deque(maxlen=patience)
        self._worst_layer: dict[str, str] = {}  # per network, the layer with the largest norm

    def measure(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, float]:
        signals = super().measure(trainer, module)
        logs_this_step = getattr(module, "_logs_this_step", lambda: True)()
        for network, prefix in zip(NETWORKS, ("g", "d"), strict=True):
            total = signals.get(f"{prefix}_grad_norm")
            # No layer's norm exceeds the total's, so below the limit the layers need no look
            # (except on logging steps, where the largest is logged).
            if total is not None and total <= self.exploding_above and not logs_this_step:
                continue
            norms = layer_gradient_norms(getattr(module, network))
            if norms:
                worst = max(norms, key=norms.get)
                signals[f"{prefix}_grad_max_layer"] = norms[worst]
                self._worst_layer[prefix] = worst
        return signals

    def check(self, step: int, signals: Mapping[str, float]) -> tuple[str, dict[str, float]] | None:
        exploding = []
        for prefix in ("g", "d"):
            largest = signals.get(f"{prefix}_grad_max_layer", signals.get(f"{prefix}_grad_norm"))
            if largest is not None and not largest <= self.exploding_above:  # NaN counts
                exploding.append(prefix)
        vanishing = [
            prefix
            for prefix in ("g", "d")
            if f"{prefix}_grad_norm" in signals
            and math.isfinite(signals[f"{prefix}_grad_norm"])
            and signals[f"{prefix}_grad_norm"] < self.vanishing_below
        ]
        self.exploding.append(",".join(exploding))
        self.vanishing.append(",".join(vanishing))
        for kind, window in (("exploding", self.exploding), ("vanishing", self.vanishing)):
            persistent = _in_every(window)
            if persistent:
                return self._finding(kind, persistent, len(window), step, signals)
        return None

    def _finding(self, kind: str, prefix: str, steps: int, step: int, signals: Mapping[str, float]):
        network = {"g": "G", "d": "D"}[prefix]
        total = signals.get(f"{prefix}_grad_norm", float("nan"))
        triggered = {f"{prefix}_grad_norm": total}
        if kind == "exploding":
            largest = signals.get(f"{prefix}_grad_max_layer", total)
            triggered[f"{prefix}_grad_max_layer"] = largest
            layer = self._worst_layer.get(prefix)
            where = f" (largest in {layer}: {largest:.3g})" if layer else ""
            detail = f"over {self.exploding_above:g}{where}"
        else:
            detail = f"under {self.vanishing_below:g} (now {total:.3g})"
        return Finding(
            f"{network}'s gradients are {kind} for {steps} steps (since step "
            f"{step - steps + 1}): norm {detail}.",
            triggered,
            self.remedies[kind],
        )


def _in_every(window: deque[str]) -> str | None:
    """The network ("g" or "d") named in every entry of a full window."""
    if len(window) < window.maxlen:
        return None
    for prefix in ("g", "d"):
        if all(prefix in entry.split(",") for entry in window):
            return prefix
    return None
