"""Gradients that vanish or explode, per network and per layer."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector, Finding, probability

NETWORKS = ("generator", "discriminator")


def layer_gradient_norms(network: nn.Module) -> dict[str, float]:
    """The L2 norm of each parameter's gradient (parameters without one are left out)."""
    named = [(name, p.grad) for name, p in network.named_parameters() if p.grad is not None]
    if not named:
        return {}
    norms = torch.stack([torch.linalg.vector_norm(grad.detach()) for _, grad in named])
    return dict(zip((name for name, _ in named), norms.tolist(), strict=True))


class GradientPathology(Detector):
    """Vanishing or exploding gradients, per network and per layer.

    After each iteration it takes the gradient norm of every parameter of G and of D (the
    gradients of the last G step and of the last D step, which both networks still hold) and
    records, per network, the largest layer norm. It raises an alarm when a network's largest
    layer norm is over ``exploding_above`` (ganhacks #10 names norms over 100) or not finite
    for ``explode_patience`` consecutive steps (an explosion turns to NaN within a few), or
    when its total norm is under ``vanishing_below`` for ``patience`` consecutive steps.

    Under the minimax loss, G's gradient passes through D's sigmoid on G's samples and is
    scaled by D(fake): when D rejects them with certainty the sigmoid saturates and G stops
    learning while its gradient norm, summed over many units, still looks ordinary. So with
    that loss, D's mean probability on fakes (the sigmoid of the ``d_fake`` logit) under
    ``saturated_below`` for ``patience`` steps is a vanishing gradient too.

    ``exploding_above`` defaults to 1,000, not the folklore's 100: a healthy DCGAN's first
    convolution in D reaches 850 on the digits, while the exploding learning rate of the
    failure zoo puts D's layers in the thousands within 20 steps. It needs both total norms,
    ``g_grad_norm`` and ``d_grad_norm`` (the engine computes them on every step for it). A loop
    that keeps its own step reports them (and ``d_fake``) to ``engine.report``, which measures
    the layers on the networks the engine holds, or feeds :meth:`observe` the
    ``{g,d}_grad_max_layer`` values too (see :func:`layer_gradient_norms`) and gives ``loss``.

    Args:
        loss: the GAN loss's name; None reads the engine's (``ctx.loss.name``) at the first
            iteration.
    """

    needs = ("g_grad_norm", "d_grad_norm")

    remedies: ClassVar[dict[str, str]] = {
        "exploding": "lower the learning rate, add a gradient penalty or spectral norm, or clip "
        "gradients.",
        "vanishing": "use the nonsaturating loss, LeakyReLU, residual blocks, and keep D from "
        "winning (label smoothing, instance noise).",
    }

    def __init__(
        self,
        exploding_above: float = 1000.0,
        vanishing_below: float = 1e-7,
        saturated_below: float = 0.01,
        patience: int = 20,
        explode_patience: int = 3,
        loss: str | None = None,
        action: str = "warn",
        warmup: int = 100,
        cooldown: int = 1000,
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
        if (
            not exploding_above > vanishing_below >= 0
            or not 0 <= saturated_below < 0.5
            or patience < 1
            or explode_patience < 1
        ):
            raise ConfigError(
                "GradientPathology needs exploding_above > vanishing_below >= 0, 0 <= "
                f"saturated_below < 0.5 and both patiences >= 1 (got {exploding_above}, "
                f"{vanishing_below}, {saturated_below}, {patience}, {explode_patience})."
            )
        self.exploding_above = exploding_above
        self.vanishing_below = vanishing_below
        self.saturated_below = saturated_below
        self.loss = loss
        self.patience = patience
        self.explode_patience = explode_patience
        self.exploding: deque[str] = deque(maxlen=explode_patience)
        self.vanishing: deque[str] = deque(maxlen=patience)
        self._worst_layer: dict[str, str] = {}  # per network, the layer with the largest norm

    # The engine then computes both total gradient norms on every step (not only when logging).
    reads_gradient_norms = True

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        if self.loss is None:
            self.loss = getattr(ctx.loss, "name", None)
        measured: dict[str, float] = {}
        for network, prefix in zip(NETWORKS, ("g", "d"), strict=True):
            total = signals.get(f"{prefix}_grad_norm")
            # No layer's norm exceeds the total's, so below the limit the layers need no look
            # (except on logging steps, where the largest is logged).
            if total is not None and total <= self.exploding_above and not ctx.logging_step:
                continue
            if f"{prefix}_grad_max_layer" in signals:  # the loop measured it itself
                continue
            norms = layer_gradient_norms(getattr(ctx, network))
            if norms:
                worst = max(norms, key=norms.get)
                measured[f"{prefix}_grad_max_layer"] = norms[worst]
                self._worst_layer[prefix] = worst
        return measured

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
        if (
            self.loss == "minimax"
            and "d_fake" in signals
            and "g" not in vanishing
            and probability(signals["d_fake"]) < self.saturated_below
        ):
            vanishing.append("g")
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
        elif prefix == "g" and total >= self.vanishing_below:  # through D's saturated sigmoid
            p_fake = probability(signals["d_fake"])
            triggered["p_fake"] = p_fake
            detail = (
                f"scaled by D(fake) = {p_fake:.2g}: D's sigmoid is saturated on G's samples, "
                "which the minimax loss's gradient passes through"
            )
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
