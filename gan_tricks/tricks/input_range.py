"""Fail fast when the real data's range and the generator's output range disagree (ganhacks #1)."""

from __future__ import annotations

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.checks import check_input_range, output_range
from gan_tricks.tricks.base import Trick

__all__ = ["InputRangeCheck"]


class InputRangeCheck(Trick):
    """Check once, before the first update, that real data fits G's output layer (ganhacks #1).

    ganhacks #1 (after Radford et al. 2016, DCGAN): normalise images to [-1, 1] and end the
    generator in tanh. Looks at ``num_samples`` real samples (the data module's
    ``real_samples`` when the run has one, else the first real batch, untransformed) and at
    G's last module (Tanh, Sigmoid, Hardtanh or unbounded) and raises ConfigError when the
    data leaves G's range, uses only the positive half of tanh's, or is images under an
    unbounded G.
    """

    def __init__(self, num_samples: int = 512) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ConfigError(
                f"InputRangeCheck num_samples must be a whole number >= 1 (got {num_samples!r})."
            )
        self.num_samples = num_samples
        self._checked = False

    def start(self, ctx: StepContext) -> None:
        self._checked = False
        if hasattr(ctx.data, "real_samples"):
            self._check(ctx, ctx.data.real_samples(self.num_samples, seed=0))

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        # Without a data module the first real batch is the sample, before any update.
        if not self._checked and ctx.real_batch is not None:
            self._check(ctx, ctx.real_batch[: self.num_samples])
        return real

    def _check(self, ctx: StepContext, real: Tensor) -> None:
        self._checked = True
        kind = ctx.data_kind
        is_image = kind == "images" if kind is not None else real.dim() >= 4
        check_input_range(real.detach().float(), output_range(ctx.generator), is_image)
