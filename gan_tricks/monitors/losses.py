"""Detectors that read the losses and D's outputs: NaN, a winning D, an oscillating D."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.guards import drop_nonfinite_gradients
from gan_tricks.monitors.actions import rates_of, set_lowered_rates
from gan_tricks.monitors.base import Detector, probability

if TYPE_CHECKING:
    from gan_tricks.engine.adversarial import GANEngine


class NonFinite(Detector):
    """NaN or Inf in a loss, a gradient norm or the weights, caught in the step it happens.

    Every signal of the step is checked (losses, penalties, both gradient norms, so a NaN
    gradient shows the step it appears), and under an engine (``GANEngine``, or the Lightning
    adapter's) so are the weights of G and D every ``weights_every`` iterations. Such a run
    does not recover: the default action stops it, and the default warm-up is 0.

    When the engine runs the step (``engine.step``, or a ``GANModule`` fit) it also guards the
    weights, whatever its action: an optimizer step whose gradients hold a NaN or an Inf (a
    NaN loss gives NaN gradients) is skipped, as AMP's gradient scaler skips an overflowing
    step. Its gradients are dropped before the optimizer reads them, so neither the weights nor
    Adam's moments see them. The alarm's action says how many updates were skipped; ``stop``
    then ends the run with healthy weights, ``warn`` goes on skipping, ``rollback`` restores a
    healthy state (the remedy for weights that are already non-finite, which no skipping can
    mend). :class:`~gan_tricks.checkpointing.AtomicCheckpointIO` never writes non-finite
    weights to disk. A loop that steps its own optimizers and calls ``engine.report`` gets the
    guard by calling :meth:`before_optimizer_step` (or
    :func:`~gan_tricks.functional.guards.drop_nonfinite_gradients`) before each step.

    Args:
        weights_every: how often to check every weight (0: never); the sum of the
            parameters' norms, one device sync per network. Weights turn NaN through a NaN
            gradient, which the gradient norms show in the step it happens, so this is a
            backstop.
        retries: with ``action: rollback``, a rollback that retries (as long-running trainers
            do): each alarm restores the last healthy state and multiplies both learning
            rates (and their schedulers' bases) by ``lr_factor``; after ``retries`` of them
            the next alarm restores it once more and stops the run, in one sentence. Every
            recurrence is an alarm (the cooldown does not apply). 0: a rollback keeps the
            learning rates and never stops.
        lr_factor: what each retry multiplies the learning rates by, in (0, 1).
    """

    severity = "error"
    reads_gradient_norms = True  # a NaN gradient shows in them in the step it appears
    remedy = (
        "lower the learning rates, add gradient clipping or a gradient penalty, check the data "
        "for NaN, and use a numerically stable loss (logits, not probabilities)."
    )

    def __init__(
        self,
        action: str = "stop",
        warmup: int = 0,
        cooldown: int = 1000,
        weights_every: int = 10,
        remedy: str | None = None,
        rollback_every: int = 200,
        retries: int = 0,
        lr_factor: float = 0.5,
    ) -> None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"NonFinite retries must be an integer >= 0 (got {retries!r}).")
        if retries and action != "rollback":
            raise ConfigError(
                f"NonFinite retries roll back and retry, so they need action: rollback (got "
                f"action: {action})."
            )
        if not 0.0 < lr_factor < 1.0:
            raise ConfigError(f"NonFinite lr_factor must be in (0, 1) (got {lr_factor}).")
        super().__init__(
            action=action,
            warmup=warmup,
            cooldown=0 if retries else cooldown,
            remedy=remedy,
            rollback_every=rollback_every,
        )
        if weights_every < 0:
            raise ConfigError(f"weights_every must be >= 0 (got {weights_every}).")
        self.weights_every = weights_every
        self.retries = retries
        self.lr_factor = lr_factor
        self.retries_used = 0
        self.skipped_updates = 0

    def before_optimizer_step(self, ctx: StepContext, optimizer: torch.optim.Optimizer) -> None:
        if drop_nonfinite_gradients(optimizer):
            self.skipped_updates += 1

    def act(self, engine: GANEngine) -> str:
        action = self._retry(engine) if self.retries else super().act(engine)
        return f"{action} ({self.skipped_updates} non-finite updates skipped so far)"

    def _retry(self, engine: GANEngine) -> str:
        rates = rates_of(engine)
        step = self.snapshots.restore(engine)  # a run that stops ends on healthy weights too
        if step is None:
            engine.should_stop = True
            return "stop: no healthy state kept yet to roll back to"
        if self.retries_used >= self.retries:
            set_lowered_rates(engine, rates, 1.0)  # the rates the run had come to, kept
            engine.should_stop = True
            return (
                f"stop: {self.retries} rollbacks, each with lower learning rates, did not keep "
                f"the run finite (weights of step {step} restored)"
            )
        self.retries_used += 1
        lowered = set_lowered_rates(engine, rates, self.lr_factor)
        self.reset_history()
        return (
            f"rollback {self.retries_used} of {self.retries}: restored step {step}, "
            f"learning rates x{self.lr_factor:g} ({lowered})"
        )

    def state_dict(self) -> dict:
        return {
            **super().state_dict(),
            "skipped_updates": self.skipped_updates,
            "retries_used": self.retries_used,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self.skipped_updates = int(state_dict.get("skipped_updates", 0))
        self.retries_used = int(state_dict.get("retries_used", 0))

    def check(self, step: int, signals: Mapping[str, float]) -> tuple[str, dict[str, float]] | None:
        bad = {name: value for name, value in signals.items() if not math.isfinite(value)}
        if not bad:
            return None
        names = ", ".join(sorted(bad))
        return f"{names} became non-finite at step {step}.", bad

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        measured: dict[str, float] = {}
        # ctx.step + 1: the iterations done once this one is (what observe is given).
        if self.weights_every and (ctx.step + 1) % self.weights_every == 0:
            for network in ("generator", "discriminator"):
                measured[f"{network}_weight_norm"] = weight_norm(getattr(ctx, network))
        return measured


def weight_norm(network: torch.nn.Module) -> float:
    """The sum of the L2 norms of ``network``'s parameters: NaN or Inf as soon as one weight
    is (0 for a network without parameters)."""
    norms = [torch.linalg.vector_norm(p.detach()) for p in network.parameters()]
    return float(torch.stack(norms).sum()) if norms else 0.0


class DiscriminatorOverpowering(Detector):
    """D has won: its loss near 0 and its outputs saturated for a whole window.

    The folklore's first failure signal ("D loss goes to 0", ganhacks #10). A step counts as
    overpowered when D's loss is under ``loss_below`` or D's mean probability on real samples
    is above ``1 - saturation`` while on fakes it is under ``saturation`` (the second test
    still fires when label smoothing keeps D's loss away from 0). The alarm needs every step of
    the last ``window`` to be overpowered, so a brief lead of D is not one.

    It reads ``d_loss``, ``d_real`` and ``d_fake`` (D's mean logits), so it applies to the
    losses whose D has a sigmoid reading (nonsaturating, minimax, hinge, least squares); a
    Wasserstein critic's loss has no floor at 0, and the detector refuses to run on one.
    """

    severity = "error"
    needs = ("d_loss", "d_real", "d_fake")
    remedy = (
        "weaken D or help G: label smoothing, instance noise, DiffAugment, R1 or spectral norm "
        "on D, a lower D learning rate (TTUR), fewer D steps."
    )

    def __init__(
        self,
        window: int = 200,
        loss_below: float = 0.05,
        saturation: float = 0.01,
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
        if window < 1 or not loss_below > 0 or not 0 < saturation < 0.5:
            raise ConfigError(
                "DiscriminatorOverpowering needs window >= 1, loss_below > 0 and 0 < saturation "
                f"< 0.5 (got {window}, {loss_below}, {saturation})."
            )
        self.window = window
        self.loss_below = loss_below
        self.saturation = saturation
        self.overpowered: deque[int] = deque(maxlen=window)
        self._loss_checked = False

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        if not self._loss_checked:  # the run's first iteration
            self._loss_checked = True
            if getattr(ctx.loss, "name", "") == "wasserstein":
                raise ConfigError(
                    "DiscriminatorOverpowering reads D's loss going to 0, which a Wasserstein "
                    "critic's loss never does; drop it from this run."
                )
        return {}

    def check(self, step: int, signals: Mapping[str, float]) -> tuple[str, dict[str, float]] | None:
        p_real, p_fake = probability(signals["d_real"]), probability(signals["d_fake"])
        saturated = p_real > 1 - self.saturation and p_fake < self.saturation
        self.overpowered.append(int(signals["d_loss"] < self.loss_below or saturated))
        if len(self.overpowered) < self.window or not all(self.overpowered):
            return None
        triggered = {"d_loss": signals["d_loss"], "p_real": p_real, "p_fake": p_fake}
        return (
            f"D has won for {self.window} steps (since step {step - self.window + 1}): its loss "
            f"is {signals['d_loss']:.3g}, D(real) = {p_real:.3f} and D(fake) = {p_fake:.3f}, so "
            "G's gradients vanish.",
            triggered,
        )


class LossOscillation(Detector):
    """D's loss swings instead of settling.

    A healthy D loss has a low variance and drifts slowly (ganhacks #10). Over the last
    ``window`` steps this detector takes the median of each block of ``smooth`` steps, which
    removes batch noise and isolated spikes, fits a line through the block medians (the slow
    drift) and measures their spread around it relative to the loss's level (with ``floor``
    keeping it defined near 0). It checks every ``smooth`` steps and raises an alarm when the
    spread exceeds ``max_variation`` on ``patience`` checks in a row.

    Calibrated on the failure zoo: swings of D's loss every hundred steps or so, as when both
    learning rates are too high (``recipes/failures/oscillation.yaml``), reach a spread of
    0.6-1.4 and stay over 0.5 for hundreds of steps; a healthy MLP GAN on the 2D mixtures
    stays under 0.3. Isolated spikes are not counted: a healthy DCGAN on the digits has a D
    loss that jumps from 0.3 to 5 and decays over a few dozen steps, again and again, so its
    spread reaches 1.0-2.1, though over 1.5 for at most 2 checks in a row; the image overlay
    of the zoo (``benchmarks/overlays/monitors/all_detectors.yaml``) sets ``max_variation``
    1.5.
    """

    needs = ("d_loss",)
    remedy = (
        "lower both learning rates or Adam's beta1 (0.5 or 0), add a gradient penalty (R1) or "
        "spectral norm to D, or use TTUR."
    )

    def __init__(
        self,
        window: int = 200,
        smooth: int = 10,
        max_variation: float = 0.5,
        patience: int = 10,
        floor: float = 0.1,
        action: str = "warn",
        warmup: int = 200,
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
            smooth < 1
            or window < 3 * smooth
            or not max_variation > 0
            or patience < 1
            or not floor > 0
        ):
            raise ConfigError(
                "LossOscillation needs smooth >= 1, window >= 3 * smooth, max_variation > 0, "
                f"patience >= 1 and floor > 0 (got window {window}, smooth {smooth}, "
                f"{max_variation}, {patience}, {floor})."
            )
        self.window = window
        self.smooth = smooth
        self.max_variation = max_variation
        self.floor = floor
        self.d_losses: deque[float] = deque(maxlen=window)
        self.swinging: deque[bool] = deque(maxlen=patience)  # one entry per check

    def check(self, step: int, signals: Mapping[str, float]) -> tuple[str, dict[str, float]] | None:
        if not math.isfinite(signals["d_loss"]):
            return None  # NonFinite's business
        self.d_losses.append(signals["d_loss"])
        if len(self.d_losses) < self.window or step % self.smooth:
            return None
        losses = list(self.d_losses)
        blocks = [
            statistics.median(losses[start : start + self.smooth])
            for start in range(0, self.window - self.smooth + 1, self.smooth)
        ]
        level = statistics.fmean(blocks)
        positions = range(len(blocks))
        slope, intercept = statistics.linear_regression(positions, blocks)
        residuals = [value - (intercept + slope * x) for x, value in zip(positions, blocks)]
        variation = statistics.pstdev(residuals) / max(abs(level), self.floor)
        self.swinging.append(variation > self.max_variation)
        if len(self.swinging) < self.swinging.maxlen or not all(self.swinging):
            return None
        low, high = min(blocks), max(blocks)
        return (
            f"D's loss swings over the last {self.window} steps: between {low:.3g} and {high:.3g} "
            f"(medians of {self.smooth} steps), a spread of {variation:.2f} of its level "
            f"{level:.3g}, over {self.max_variation} on {len(self.swinging)} checks in a row.",
            {"d_loss_variation": variation, "d_loss_low": low, "d_loss_high": high},
        )
