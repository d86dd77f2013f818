"""PacGAN's packing of what D sees: a thin trick over ``functional.packing``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.packing import check_packing_degree, pack
from gan_tricks.tricks.base import ORDER_PACKING, Trick


class Packing(Trick):
    """PacGAN (Lin et al. 2018, "PacGAN: the power of two samples in GANs").

    D judges packs of ``m`` samples: real and fake batches are packed with
    :func:`~gan_tricks.functional.packing.pack` in D's and G's steps, after every other
    transform, so D gets N // m samples of m times the features (2D points) or channels
    (images). The discriminator must be built for that: ``in_dim: 4`` on 2D data or
    ``channels: 2 * C`` on images for m = 2. G is unchanged. A batch size that is not a
    multiple of m loses its last N % m samples. m = 1 changes nothing.
    """

    order = ORDER_PACKING

    def __init__(self, m: int = 2) -> None:
        check_packing_degree(m)
        self.m = m

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        sample_shape = ctx.sample_shape
        if self.m == 1 or sample_shape is None:
            return
        # An MLP reads a packed image flat (m x C x H x W inputs); a convolutional D by channel.
        discriminator = ctx.discriminator
        flat = hasattr(discriminator, "in_dim") and len(sample_shape) > 1
        features = math.prod(sample_shape) if flat else sample_shape[0]
        dummy = torch.zeros((2 * self.m, *sample_shape), device=ctx.device)
        was_training = discriminator.training
        discriminator.eval()
        try:
            with torch.no_grad():
                logits = discriminator(pack(dummy, self.m))
            works = logits.dim() >= 1 and len(logits) == 2
        except (RuntimeError, ValueError, IndexError):
            works = False
        finally:
            discriminator.train(was_training)
        if not works:
            raise ConfigError(
                f"Packing(m={self.m}) needs a discriminator that takes {self.m} x {features} = "
                f"{self.m * features} input features/channels; set the discriminator's in_dim "
                f"(or channels) to {self.m * features}."
            )

    @property
    def samples_per_input(self) -> int:
        return self.m

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        return pack(real, self.m)

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        return pack(fake, self.m)
