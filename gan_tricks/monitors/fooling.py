"""G fooling D with garbage: G's loss falls while its samples get no closer to the data."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import torch
from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector, Finding


def moment_gap(fake: Tensor, real: Tensor) -> float:
    """How far a batch of fakes is from a real batch in its first two moments, per feature:
    ``|mean_f - mean_r| + |std_f - std_r|`` averaged over features (pixels or coordinates),
    over the real batch's mean std. 0 for matching moments; independent of the data's scale.

    A cheap reading of sample quality that does not go through D, so it still means
    something when D has been fooled.
    """
    fake = fake.detach().flatten(1).float()
    real = real.detach().flatten(1).float()
    scale = real.std(0).mean().clamp_min(1e-8)
    gap = (fake.mean(0) - real.mean(0)).abs() + (fake.std(0) - real.std(0)).abs()
    return float(gap.mean() / scale)


def _slope(values: list[float]) -> float:
    """The least-squares slope of ``values`` against their index."""
    n = len(values)
    x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    y = torch.tensor(values, dtype=torch.float64)
    return float((x * (y - y.mean())).sum() / (x * x).sum())


class GeneratorFoolingWithGarbage(Detector):
    """G fools D while its samples get no closer to the data.

    G winning is good news only if its samples improve. Over the last ``window`` steps this
    detector fits a line to G's loss and follows the :func:`moment_gap` between G's batch and
    the real batch (measured every ``every`` steps, from ``ctx.g_output``). It raises an alarm
    when, in the window's last quarter, even the closest batch was far from the data (a gap
    over ``max_gap``: the healthy runs of the failure zoo stay under 0.4, the failing ones over
    1) and no closer than in the window's first quarter by ``min_improvement``, while either
    G's loss fell by more than ``min_drop`` of its level over the window, or D rated G's
    samples at least as real as the data on average (mean logits ``d_fake >= d_real``). The
    second case is a weak or frozen D that G fooled early, whose loss has nothing left to
    fall. (Without the distance test, a healthy DCGAN on the digits raised it: G's loss falls
    there in D's sawtooth while its samples, already close, get no closer.) D's loss rising
    over the window is reported with it. In a hand-written loop, report ``g_loss`` (and
    ``d_loss``, ``d_real``, ``d_fake``) every step and either pass the batches to
    ``engine.report(..., real=..., fake=...)`` or report ``moment_gap`` whenever you measure
    it (to :meth:`observe` directly, only the latter).
    """

    severity = "warning"
    needs = ("g_loss",)
    remedy = (
        "D is being fooled rather than beaten: give D more capacity or steps (NCritic), "
        "lower G's learning rate (TTUR), and check D's inputs (real and fake normalised alike)."
    )

    def __init__(
        self,
        window: int = 500,
        min_drop: float = 0.3,
        min_improvement: float = 0.05,
        max_gap: float = 1.0,
        every: int = 10,
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
        if (
            window < 20
            or not 0 < min_drop < 1
            or not 0 <= min_improvement < 1
            or not max_gap > 0
            or every < 1
        ):
            raise ConfigError(
                "GeneratorFoolingWithGarbage needs window >= 20, 0 < min_drop < 1, "
                f"0 <= min_improvement < 1, max_gap > 0 and every >= 1 (got {window}, "
                f"{min_drop}, {min_improvement}, {max_gap}, {every})."
            )
        self.window = window
        self.min_drop = min_drop
        self.min_improvement = min_improvement
        self.max_gap = max_gap
        self.every = every
        self.g_losses: deque[float] = deque(maxlen=window)
        self.d_losses: deque[float] = deque(maxlen=window)
        self.d_margins: deque[float] = deque(maxlen=window)  # d_real - d_fake, in logits
        self.gaps: deque[float] = deque(maxlen=max(window // every, 2))

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        batches = self.fake_and_real(ctx, self.every)
        if batches is not None:
            return {"moment_gap": moment_gap(*batches)}
        if "moment_gap" not in signals:
            self.warn_no_samples(ctx, self.every, "moment_gap")
        return {}

    def check(self, step: int, signals: Mapping[str, float]) -> Finding | None:
        self.g_losses.append(signals["g_loss"])
        if "d_loss" in signals:
            self.d_losses.append(signals["d_loss"])
        if "d_real" in signals and "d_fake" in signals:
            self.d_margins.append(signals["d_real"] - signals["d_fake"])
        if "moment_gap" in signals:
            self.gaps.append(signals["moment_gap"])
        if len(self.g_losses) < self.window or len(self.gaps) < self.gaps.maxlen:
            return None
        gaps = list(self.gaps)
        # The closest the samples came to the data in the window's last quarter, against its
        # first quarter. Minima, not a fitted slope: a weak D's G sweeps out to a gap of 600
        # and back every 300 steps, which a slope reads as progress half of the time.
        quarter = max(len(gaps) // 4, 1)
        closest_before, closest_now = min(gaps[:quarter]), min(gaps[-quarter:])
        if closest_now <= self.max_gap:
            return None  # close to the data: a falling G loss there is G catching up
        if closest_now < (1 - self.min_improvement) * closest_before:
            return None  # the samples are getting closer to the data
        gap_change = closest_now - closest_before
        g_level = max(abs(sum(self.g_losses) / len(self.g_losses)), 1e-8)
        g_change = _slope(list(self.g_losses)) * (self.window - 1)
        falling = g_change < -self.min_drop * g_level
        margin = sum(self.d_margins) / len(self.d_margins) if self.d_margins else float("inf")
        fooled = margin <= 0
        if not (falling or fooled):
            return None
        d_change = _slope(list(self.d_losses)) * (len(self.d_losses) - 1) if self.d_losses else 0.0
        d_note = f", while D's loss rose by {d_change:.3g}" if d_change > 0 else ""
        gaps_text = f"closest moment gap {closest_before:.3g} -> {closest_now:.3g}"
        if falling:
            message = (
                f"G's loss fell by {-g_change:.3g} over the last {self.window} steps{d_note}, "
                f"but its samples got no closer to the data ({gaps_text})."
            )
        else:
            message = (
                f"D rates G's samples as real as the data over the last {self.window} steps "
                f"(mean logit margin {margin:.3g}), yet they are far from it ({gaps_text})."
            )
        return Finding(
            message,
            {
                "g_loss_change": g_change,
                "moment_gap_change": gap_change,
                "moment_gap": gaps[-1],
                "d_logit_margin": margin,
                "d_loss_change": d_change,
            },
        )
