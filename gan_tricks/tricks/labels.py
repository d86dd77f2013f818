"""Soft and flipped targets for D: label smoothing and label flipping (ganhacks #6)."""

from __future__ import annotations

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.labels import flip_labels, one_sided_labels, smooth_labels
from gan_tricks.functional.losses import LOSSES
from gan_tricks.tricks.base import Trick

__all__ = ["LabelFlipping", "LabelSmoothing", "check_loss_uses_targets"]


def check_loss_uses_targets(trick: Trick, ctx: StepContext) -> None:
    """Raise ConfigError when the step's loss ignores D's targets: ``trick`` would do nothing."""
    if not ctx.loss.uses_targets:
        with_targets = ", ".join(name for name, loss in LOSSES.items() if loss.uses_targets)
        raise ConfigError(
            f"{type(trick).__name__} changes D's targets but the {ctx.loss.name} loss ignores "
            f"them; set model.loss to one of {with_targets}, or drop the trick."
        )


def _check_range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    if len(value) != 2 or value[0] > value[1]:
        raise ConfigError(
            f"LabelSmoothing {name} must be [low, high] with low <= high (got {value})."
        )
    return float(value[0]), float(value[1])


class LabelSmoothing(Trick):
    """Soft targets for D (ganhacks #6; Salimans et al. 2016, "Improved techniques for GANs").

    Two-sided (default): every D step draws each real target uniformly from ``real_range`` and
    each fake target from ``fake_range``, per element (ganhacks #6: [0.7, 1.2] and [0, 0.3]).
    ``one_sided=True``: real targets are ``one_sided_real`` (0.9) and fake targets stay 0, as
    Salimans et al. advise, since smoothing the fake side rewards D for leaving fakes where
    they are. The ranges are then unused.
    """

    def __init__(
        self,
        real_range: tuple[float, float] = (0.7, 1.2),
        fake_range: tuple[float, float] = (0.0, 0.3),
        one_sided: bool = False,
        one_sided_real: float = 0.9,
    ) -> None:
        self.real_range = _check_range("real_range", real_range)
        self.fake_range = _check_range("fake_range", fake_range)
        if self.real_range[0] <= self.fake_range[1]:
            raise ConfigError(
                f"LabelSmoothing real_range {list(self.real_range)} must lie above fake_range "
                f"{list(self.fake_range)}, or D cannot tell real targets from fake ones."
            )
        if not 0.0 < one_sided_real <= 1.0:
            raise ConfigError(
                f"LabelSmoothing one_sided_real must be in (0, 1] (got {one_sided_real}); "
                "Salimans et al. use 0.9."
            )
        self.one_sided = one_sided
        self.one_sided_real = float(one_sided_real)

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        check_loss_uses_targets(self, ctx)

    def targets(
        self, ctx: StepContext, real_target: Tensor, fake_target: Tensor
    ) -> tuple[Tensor, Tensor]:
        if self.one_sided:
            return one_sided_labels(real_target, self.one_sided_real), fake_target
        return smooth_labels(real_target, *self.real_range), smooth_labels(
            fake_target, *self.fake_range
        )


class LabelFlipping(Trick):
    """Flip a fraction ``p`` of D's targets every D step (ganhacks #6, "occasionally flip").

    Each real and each fake target becomes ``1 - t`` with probability ``p``, independently;
    it runs after label smoothing (``order = 10``) whatever the recipe's order, so a smoothed
    0.9 flips to 0.1. ``p`` above 0.5 would make the flipped labels the majority.
    """

    order = 10

    def __init__(self, p: float = 0.05) -> None:
        if not 0.0 <= p <= 0.5:
            raise ConfigError(f"LabelFlipping p must be in [0, 0.5] (got {p}); ganhacks uses 0.05.")
        self.p = float(p)

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        check_loss_uses_targets(self, ctx)

    def targets(
        self, ctx: StepContext, real_target: Tensor, fake_target: Tensor
    ) -> tuple[Tensor, Tensor]:
        return flip_labels(real_target, self.p), flip_labels(fake_target, self.p)
