"""SNGAN ResNet generator and discriminator (Miyato et al. 2018, CIFAR architecture).

Built from :class:`~gan_tricks.layers.GeneratorBlock` and
:class:`~gan_tricks.layers.DiscriminatorBlock`, so the skip connection itself is an ablation
knob: ``block_type`` (residual, highway, plain) and ``shortcut`` (ResNet options A/B/C of He et
al. 2016). With ``shortcut="zero_pad"`` the first discriminator block, which widens
``channels -> width``, is exactly ResNet option A: the image channels pass through and the other
channels of the skip are zeros.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import (
    DiscriminatorBlock,
    GeneratorBlock,
    check_at_least,
    init_weights,
    make_activation,
    make_norm,
)
from gan_tricks.layers.minibatch import MinibatchStdDev
from gan_tricks.models.dcgan import resolution_steps

__all__ = ["ResNetDiscriminator", "ResNetGenerator"]


def _resolve_widths(
    width: int, widths: tuple[int, ...] | None, expected: int, image_size: int, meaning: str
) -> tuple[int, ...]:
    """Return per-stage widths: ``widths`` if given (checked), else ``width`` everywhere."""
    if widths is None:
        check_at_least("width", width, 1)
        return (width,) * expected
    widths = tuple(widths)
    if len(widths) != expected:
        raise ConfigError(
            f"widths must have {expected} entries for image_size {image_size} ({meaning}) "
            f"(got {len(widths)}); list {expected} widths or leave widths unset to use width."
        )
    for stage_width in widths:
        check_at_least("every entry of widths", stage_width, 1)
    return widths


class ResNetGenerator(nn.Module):
    """Map latent vectors (N, latent_dim) to images (N, channels, image_size, image_size).

    ``Linear z -> 4x4 x widths[0]``, then ``n_up = log2(image_size / 4)`` upsampling blocks,
    ``extra_blocks`` blocks at full resolution, and ``norm -> act -> conv3x3 -> out_activation``.
    By default every stage has ``width`` channels, as in SNGAN; ``widths`` (n_up + 1 entries:
    the 4x4 width, then one per upsampling block) overrides that. ``extra_blocks`` makes the
    generator deeper without changing its resolution, for depth/degradation studies where
    ``block_type="plain"`` vs ``"residual"`` shows what the skip buys.
    """

    def __init__(
        self,
        latent_dim: int = 128,
        image_size: int = 32,
        channels: int = 3,
        width: int = 128,
        widths: tuple[int, ...] | None = None,
        norm: str = "batch",
        activation: str = "relu",
        block_type: str = "residual",
        shortcut: str = "project_when_needed",
        extra_blocks: int = 0,
        out_activation: str = "tanh",
        init: str = "xavier",
    ) -> None:
        super().__init__()
        n_up = resolution_steps(image_size)
        check_at_least("latent_dim", latent_dim, 1)
        check_at_least("channels", channels, 1)
        check_at_least("extra_blocks", extra_blocks, 0)
        self.widths = _resolve_widths(
            width, widths, n_up + 1, image_size, "the 4x4 width, then one per upsampling block"
        )
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels

        def block(in_channels: int, out_channels: int, upsample: bool) -> GeneratorBlock:
            return GeneratorBlock(
                in_channels,
                out_channels,
                norm=norm,
                activation=activation,
                upsample=upsample,
                block_type=block_type,
                shortcut=shortcut,
            )

        self.project = nn.Linear(latent_dim, 4 * 4 * self.widths[0])
        out_width = self.widths[-1]
        self.blocks = nn.Sequential(
            *(block(w_in, w_out, True) for w_in, w_out in pairwise(self.widths)),
            *(block(out_width, out_width, False) for _ in range(extra_blocks)),
        )
        self.to_image = nn.Sequential(
            make_norm(norm, out_width),
            make_activation(activation),
            nn.Conv2d(out_width, channels, kernel_size=3, padding=1),
            make_activation(out_activation, arg_name="out_activation"),
        )
        init_weights(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z.reshape(z.shape[0], self.latent_dim))
        h = h.view(z.shape[0], self.widths[0], 4, 4)
        return self.to_image(self.blocks(h))


class ResNetDiscriminator(nn.Module):
    """Map images (N, channels, image_size, image_size) to real/fake logits (N,).

    ``n_down = log2(image_size / 4)`` downsampling blocks, the first one SNGAN's "optimized"
    block on the raw image, then ``extra_blocks`` blocks at 4x4 (SNGAN-CIFAR has 2), act, global
    sum pooling (as in SNGAN) and a linear layer. Unlike the SNGAN CIFAR discriminator, which
    stops at 8x8, downsampling continues to 4x4 so G and D mirror each other at every size.
    ``widths`` (n_down entries, one per downsampling block; extra blocks use the last) overrides
    the default of ``width`` everywhere.

    ``minibatch_std > 0`` appends :class:`~gan_tricks.layers.minibatch.MinibatchStdDev` (with that
    group size) to the final 4x4 feature map, after the activation and before pooling, so the
    linear layer takes one extra channel: the features' average standard deviation across the
    group (Karras et al. 2018, ProGAN), which lets D see a collapsed batch. 0 (the default)
    leaves it out.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: int = 128,
        widths: tuple[int, ...] | None = None,
        norm: str = "none",
        activation: str = "relu",
        block_type: str = "residual",
        shortcut: str = "project_when_needed",
        extra_blocks: int = 2,
        init: str = "xavier",
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        n_down = resolution_steps(image_size)
        check_at_least("channels", channels, 1)
        check_at_least("extra_blocks", extra_blocks, 0)
        check_at_least("minibatch_std", minibatch_std, 0)
        self.widths = _resolve_widths(
            width, widths, n_down, image_size, "one per downsampling block"
        )
        self.image_size = image_size
        self.channels = channels

        def block(
            in_channels: int, out_channels: int, downsample: bool, first: bool = False
        ) -> DiscriminatorBlock:
            return DiscriminatorBlock(
                in_channels,
                out_channels,
                norm=norm,
                activation=activation,
                downsample=downsample,
                block_type=block_type,
                shortcut=shortcut,
                first=first,
            )

        out_width = self.widths[-1]
        self.blocks = nn.Sequential(
            block(channels, self.widths[0], True, first=True),
            *(block(w_in, w_out, True) for w_in, w_out in pairwise(self.widths)),
            *(block(out_width, out_width, False) for _ in range(extra_blocks)),
        )
        self.activation = make_activation(activation)
        self.batch_stats = MinibatchStdDev(minibatch_std) if minibatch_std else nn.Identity()
        self.to_logit = nn.Linear(out_width + (1 if minibatch_std else 0), 1)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.batch_stats(self.activation(self.blocks(x)))
        return self.to_logit(h.sum(dim=(2, 3))).squeeze(-1)
