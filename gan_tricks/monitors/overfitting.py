"""D overfitting its finite training set (ADA's overfitting heuristic)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import torch
from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Detector, Finding


def sign_mean(logits: Tensor) -> float:
    """E[sign(D(x))]: ADA's r_t heuristic, 1 when D calls every sample real."""
    return float(torch.sign(logits.detach()).mean())


class DiscriminatorOverfitting(Detector):
    """D calls training images real, but not real images it has never seen.

    StyleGAN2-ADA (Karras et al. 2020) watched ``r = E[sign(D(x))]`` on real images: on the
    training set it drifts toward 1 as D memorises it, while on held-out images D's outputs
    fall, and G's samples then degrade. Every ``every`` iterations this detector reads
    ``r_train`` on the iteration's real batch and ``r_heldout`` on ``samples`` held-out real
    images (the run's data, ``ctx.data.heldout_samples(n, seed)``: set
    ``data.init_args.holdout`` on the digit data), both through the engine's ``judge`` (no
    augmentation, D in eval mode), and raises an alarm when on ``patience`` consecutive checks
    ``r_train`` is at least ``min_r_train`` and exceeds ``r_heldout`` by ``min_gap`` or more.

    Without held-out data (a data set without ``heldout_samples``, or a loop whose engine was
    given no ``data``) it raises ``ConfigError`` at the run's first iteration, unless that
    iteration's signals already carry ``r_train`` and ``r_heldout``: a loop that measures them
    itself with :func:`sign_mean` reports them from its first report on (whenever it measures
    them), or feeds :meth:`observe` directly, and the detector then reads no data.
    """

    severity = "warning"
    remedy = (
        "augment what D sees (AdaptiveAugment, DiffAugment), add consistency regularization or "
        "LeCam, use more data, or stop earlier."
    )

    def __init__(
        self,
        min_gap: float = 0.3,
        min_r_train: float = 0.5,
        every: int = 100,
        samples: int = 256,
        patience: int = 3,
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
        if not 0 < min_gap <= 2 or not -1 <= min_r_train <= 1 or every < 1 or samples < 1:
            raise ConfigError(
                "DiscriminatorOverfitting needs 0 < min_gap <= 2, -1 <= min_r_train <= 1, "
                f"every >= 1 and samples >= 1 (got {min_gap}, {min_r_train}, {every}, {samples})."
            )
        if patience < 1:
            raise ConfigError(f"DiscriminatorOverfitting needs patience >= 1 (got {patience}).")
        self.min_gap = min_gap
        self.min_r_train = min_r_train
        self.every = every
        self.samples = samples
        self.patience = patience
        self.overfit: deque[int] = deque(maxlen=patience)
        self._heldout: Tensor | None = None
        self._reads_data: bool | None = None  # decided at the first iteration

    def _start(self, ctx: StepContext, signals: Mapping[str, float]) -> None:
        if "r_train" in signals and "r_heldout" in signals:
            self._reads_data = False  # the loop measures them itself
            return
        data = ctx.data
        if data is None or not hasattr(data, "heldout_samples"):
            raise ConfigError(
                "DiscriminatorOverfitting needs held-out real data, and this run's data has "
                "none; use Digits, StackedDigits or Toy2D (given to the engine as data), report "
                "r_train and r_heldout yourself, or drop the detector."
            )
        self._heldout = data.heldout_samples(self.samples, seed=0)
        self._reads_data = True

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        if self._reads_data is None:
            self._start(ctx, signals)
        real = ctx.real_batch
        # ctx.step + 1: the iterations done once this one is (what observe is given).
        if not self._reads_data or (ctx.step + 1) % self.every or real is None:
            return {}
        count = min(len(real), len(self._heldout))  # the same number of each
        return {
            "r_train": sign_mean(ctx.judge(real[:count])),
            "r_heldout": sign_mean(ctx.judge(self._heldout[:count])),
        }

    def check(self, step: int, signals: Mapping[str, float]) -> Finding | None:
        if "r_train" not in signals:
            return None  # not a checking step
        r_train, r_heldout = signals["r_train"], signals["r_heldout"]
        gap = r_train - r_heldout
        self.overfit.append(int(r_train >= self.min_r_train and gap >= self.min_gap))
        if len(self.overfit) < self.patience or not all(self.overfit):
            return None
        return Finding(
            f"D overfits its training images on {self.patience} checks in a row: it calls "
            f"{(r_train + 1) / 2:.0%} of training images real but {(r_heldout + 1) / 2:.0%} of "
            f"held-out ones (E[sign D] {r_train:.2f} against {r_heldout:.2f}).",
            {"r_train": r_train, "r_heldout": r_heldout},
        )
