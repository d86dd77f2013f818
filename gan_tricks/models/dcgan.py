"""DCGAN generator and discriminator (Radford et al. 2016), with every layer choice by name.

The defaults reproduce the paper's architecture guidelines: strided convs instead of pooling,
batch norm in both networks except the generator output and the discriminator input, ReLU in the
generator with tanh output, LeakyReLU(0.2) in the discriminator, and N(0, 0.02) weights.
"""

from __future__ import annotations

import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import (
    check_at_least,
    init_weights,
    make_activation,
    make_downsample,
    make_norm,
    make_upsample,
)
from gan_tricks.layers.minibatch import MinibatchStdDev
from gan_tricks.models.mlp import check_dropout

IMAGE_SIZES = (8, 16, 32, 64)

__all__ = ["IMAGE_SIZES", "DCGANDiscriminator", "DCGANGenerator", "resolution_steps"]


def resolution_steps(image_size: int) -> int:
    """Number of x2 resampling stages between a 4x4 feature map and ``image_size``.

    All convolutional models start (G) or end (D) at 4x4, as DCGAN and SNGAN do.
    """
    if image_size not in IMAGE_SIZES:
        raise ConfigError(
            f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))} (got {image_size!r}); "
            f"resize the data to a supported size."
        )
    return (image_size // 4).bit_length() - 1


class DCGANGenerator(nn.Module):
    """Map latent vectors (N, latent_dim) to images (N, channels, image_size, image_size).

    z is projected to a 4x4 map with ``width * 2**(n_up - 1)`` channels by a 4x4 transposed conv
    (the paper's "project and reshape"), then each upsampling stage doubles the resolution and
    halves the channels, and the last one produces the image. The output stage has no norm:
    Radford et al. found that norm on every layer made samples oscillate and training unstable.

    ``dropout > 0`` adds ``Dropout2d`` after every hidden stage (including the 4x4 projection,
    so 8x8 models get it too): a folklore trick to inject noise and slow the generator down.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        image_size: int = 32,
        channels: int = 3,
        width: int = 64,
        norm: str = "batch",
        activation: str = "relu",
        upsample: str = "transpose",
        out_activation: str = "tanh",
        dropout: float = 0.0,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        n_up = resolution_steps(image_size)
        check_at_least("latent_dim", latent_dim, 1)
        check_at_least("channels", channels, 1)
        check_at_least("width", width, 1)
        check_dropout(dropout)
        self.latent_dim = latent_dim
        self.image_size = image_size
        self.channels = channels

        def hidden_stage(layer: nn.Module, out_channels: int) -> list[nn.Module]:
            stage = [layer, make_norm(norm, out_channels), make_activation(activation)]
            if dropout > 0:
                stage.append(nn.Dropout2d(dropout))
            return stage

        stage_channels = width * 2 ** (n_up - 1)
        layers = hidden_stage(
            nn.ConvTranspose2d(latent_dim, stage_channels, kernel_size=4, stride=1, padding=0),
            stage_channels,
        )
        for _ in range(n_up - 1):
            layers += hidden_stage(
                make_upsample(upsample, stage_channels, stage_channels // 2), stage_channels // 2
            )
            stage_channels //= 2
        layers += [
            make_upsample(upsample, stage_channels, channels),
            make_activation(out_activation, arg_name="out_activation"),
        ]
        self.net = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.reshape(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """Map images (N, channels, image_size, image_size) to real/fake logits (N,).

    The first downsampling layer has no norm (Radford et al. 2016 found that norm on every
    layer, input included, destabilizes training); each further stage doubles the channels until
    4x4, and a valid 4x4 conv gives one logit. No sigmoid: losses work on logits.

    ``minibatch_std > 0`` inserts :class:`~gan_tricks.layers.minibatch.MinibatchStdDev` with that
    group size before the final 4x4 conv, adding one channel: the features' average standard
    deviation across the group (Karras et al. 2018, ProGAN), so D can see a collapsed batch.
    0 (the default) leaves it out.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        width: int = 64,
        norm: str = "batch",
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        downsample: str = "stride",
        init: str = "dcgan",
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        n_down = resolution_steps(image_size)
        check_at_least("channels", channels, 1)
        check_at_least("width", width, 1)
        check_at_least("minibatch_std", minibatch_std, 0)
        self.image_size = image_size
        self.channels = channels

        stage_channels = width
        layers = [
            make_downsample(downsample, channels, stage_channels),
            make_activation(activation, negative_slope),
        ]
        for _ in range(n_down - 1):
            layers += [
                make_downsample(downsample, stage_channels, stage_channels * 2),
                make_norm(norm, stage_channels * 2),
                make_activation(activation, negative_slope),
            ]
            stage_channels *= 2
        if minibatch_std:
            layers.append(MinibatchStdDev(minibatch_std))
            stage_channels += 1
        layers.append(nn.Conv2d(stage_channels, 1, kernel_size=4))
        self.net = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()
