"""Mode collapse: G's samples less diverse than the real data."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import torch
from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector


def diversity_signals(fake: Tensor, real: Tensor, duplicate_scale: float = 0.1) -> dict[str, float]:
    """How diverse a batch of fakes is, against a batch of real samples.

    Returns ``diversity_ratio``, the mean pairwise L2 distance among fakes over that among
    real samples (1: as diverse as real data, near 0: G repeats itself), and
    ``duplicate_rate``, the share of fakes whose nearest other fake is closer than
    ``duplicate_scale`` times the median nearest-neighbour distance among real samples.
    """
    fake = fake.detach().flatten(1).float()
    real = real.detach().flatten(1).float()
    fake_distances, real_distances = torch.cdist(fake, fake), torch.cdist(real, real)
    mean_fake = fake_distances.sum() / max(len(fake) * (len(fake) - 1), 1)
    mean_real = real_distances.sum() / max(len(real) * (len(real) - 1), 1)
    fake_nearest = fake_distances.fill_diagonal_(float("inf")).min(1).values
    real_nearest = real_distances.fill_diagonal_(float("inf")).min(1).values
    duplicate = fake_nearest < duplicate_scale * real_nearest.median()
    return {
        "diversity_ratio": float(mean_fake / mean_real.clamp_min(1e-12)),
        "duplicate_rate": float(duplicate.float().mean()),
    }


class ModeCollapse(Detector):
    """G's samples have become much less diverse than the real data.

    Every ``every`` iterations it compares the fakes of the last G step (``ctx.g_output``,
    no extra forward pass) with the real batch of the same iteration, through
    :func:`diversity_signals`, and raises an alarm when, on ``patience`` consecutive checks,
    the diversity ratio is under ``min_ratio`` or the near-duplicate rate over
    ``max_duplicates``. Pixel-space distances catch a G that repeats a few samples (the
    collapse of the folklore); a G that covers a few modes with variety inside each shows
    later, in the mode counts of ``gan-tricks evaluate``.

    A loop that keeps its own step passes both batches to ``engine.report(..., real=...,
    fake=...)`` (G's raw output), or reports ``diversity_ratio`` and ``duplicate_rate`` from
    :func:`diversity_signals` itself; an iteration with neither is not a check (the first
    such checking iteration logs a warning saying so).

    The warm-up is 500 iterations: a freshly initialised G maps every z to much the same
    output, and a healthy DCGAN on stacked digits needs 300-350 iterations to pass 0.4
    (``recipes/stacked_digits_dcgan_tricks.yaml`` in the failure zoo; 0.67 or more after 500).
    """

    severity = "error"
    remedy = (
        "packing (PacGAN), minibatch standard deviation in D, a mixture of generators with "
        "MixtureClassifier, experience replay, or a Wasserstein loss with a gradient penalty."
    )

    def __init__(
        self,
        min_ratio: float = 0.4,
        max_duplicates: float = 0.5,
        every: int = 10,
        patience: int = 5,
        action: str = "warn",
        warmup: int = 500,
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
        if not 0 < min_ratio < 1 or not 0 < max_duplicates <= 1 or every < 1 or patience < 1:
            raise ConfigError(
                "ModeCollapse needs 0 < min_ratio < 1, 0 < max_duplicates <= 1, every >= 1 and "
                f"patience >= 1 (got {min_ratio}, {max_duplicates}, {every}, {patience})."
            )
        self.min_ratio = min_ratio
        self.max_duplicates = max_duplicates
        self.every = every
        self.patience = patience
        self.collapsed: deque[int] = deque(maxlen=patience)

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        batches = self.fake_and_real(ctx, self.every)
        if batches is not None:
            return diversity_signals(*batches)
        if "diversity_ratio" not in signals:
            self.warn_no_samples(ctx, self.every, "diversity_ratio and duplicate_rate")
        return {}

    def check(self, step: int, signals: Mapping[str, float]) -> tuple[str, dict[str, float]] | None:
        if "diversity_ratio" not in signals:
            return None  # not a checking step
        ratio, duplicates = signals["diversity_ratio"], signals["duplicate_rate"]
        self.collapsed.append(int(ratio < self.min_ratio or duplicates > self.max_duplicates))
        if len(self.collapsed) < self.patience or not all(self.collapsed):
            return None
        return (
            f"G's samples have collapsed on {self.patience} checks in a row: they are "
            f"{ratio:.2f} times as spread out as real samples (limit {self.min_ratio}) and "
            f"{duplicates:.0%} are near-duplicates (limit {self.max_duplicates:.0%}).",
            {"diversity_ratio": ratio, "duplicate_rate": duplicates},
        )
