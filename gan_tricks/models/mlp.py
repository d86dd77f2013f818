"""MLP generator and discriminator: for 2-D toy data, and for small images as flat vectors.

Toy data (rings of Gaussians, spirals, ...) is where mode collapse and oscillation are visible
at a glance and runs take seconds, so every trick is first checked here before paying for image
experiments. The original GAN (Goodfellow et al. 2014) was an MLP on MNIST; on the bundled 8x8
digits an MLP (``out_shape`` in G, flat inputs in D) trains about twice as many samples per
second as the 16x16 DCGAN on a CPU core, and ``recipes/stacked_digits_tricks.yaml`` spends that
on iterations.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers import check_at_least, init_weights, make_activation, make_norm
from gan_tricks.layers.minibatch import MinibatchStdDev

__all__ = ["MLPDiscriminator", "MLPGenerator", "hidden_layers"]


def check_dropout(dropout: float) -> None:
    """Reject dropout probabilities outside [0, 1): 1 would zero every feature."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(
            f"dropout must be in [0, 1) (got {dropout!r}); use 0 to disable it or e.g. 0.5."
        )


def hidden_layers(
    in_dim: int,
    width: int,
    depth: int,
    norm: str,
    activation: str,
    negative_slope: float = 0.2,
    dropout: float = 0.0,
) -> list[nn.Module]:
    """``depth`` blocks of Linear, norm and activation (and dropout), each ``width`` wide."""
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [
            nn.Linear(in_dim if index == 0 else width, width),
            make_norm(norm, width, dims=1),
            make_activation(activation, negative_slope),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return layers


class MLPGenerator(nn.Module):
    """Map latent vectors (N, latent_dim) to samples (N, out_dim), or (N, *out_shape).

    Each of the ``depth`` hidden layers is ``Linear -> norm -> act (-> Dropout)``. Dropout in the
    generator is folklore from the "GAN hacks" list (and pix2pix, Isola et al. 2017, which uses it
    as the noise source); the module is only added when ``dropout > 0`` so the default model has
    no train/eval difference.

    ``out_shape`` (e.g. ``[3, 8, 8]``) reshapes each output into an image, so an MLP can stand in
    for a convolutional G; ``out_dim`` is then its size and may be left out.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        out_dim: int | None = None,
        width: int = 128,
        depth: int = 3,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        out_activation: str = "identity",
        init: str = "default",
        out_shape: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        out_dim = _output_size(out_dim, out_shape)
        check_at_least("latent_dim", latent_dim, 1)
        check_at_least("width", width, 1)
        check_at_least("depth", depth, 1)
        check_dropout(dropout)
        self.latent_dim = latent_dim
        self.out_dim = out_dim
        self.out_shape = tuple(out_shape) if out_shape is not None else (out_dim,)
        self.net = nn.Sequential(
            *hidden_layers(latent_dim, width, depth, norm, activation, dropout=dropout),
            nn.Linear(width, out_dim),
            make_activation(out_activation, arg_name="out_activation"),
        )
        init_weights(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape(z.shape[0], *self.out_shape)


def _output_size(out_dim: int | None, out_shape: tuple[int, ...] | list[int] | None) -> int:
    if out_shape is None:
        out_dim = 2 if out_dim is None else out_dim
        check_at_least("out_dim", out_dim, 1)
        return out_dim
    if not out_shape or any(not isinstance(n, int) or n < 1 for n in out_shape):
        raise ConfigError(
            f"out_shape must be a list of positive sizes such as [3, 8, 8] (got {out_shape!r})."
        )
    size = math.prod(out_shape)
    if out_dim is not None and out_dim != size:
        raise ConfigError(
            f"out_dim {out_dim} does not match out_shape {list(out_shape)} ({size} values);"
            " give only out_shape."
        )
    return size


class MLPDiscriminator(nn.Module):
    """Map samples (N, in_dim), or images (N, C, H, W) with C * H * W = in_dim, to logits (N,).

    Returns raw logits, without a sigmoid, because every loss (non-saturating, hinge,
    Wasserstein, ...) is defined on logits and a sigmoid here would lose precision in BCE.

    ``minibatch_std > 0`` inserts :class:`~gan_tricks.layers.minibatch.MinibatchStdDev` with that
    group size before the last linear layer, which then takes one extra feature: the features'
    average standard deviation across the group (Karras et al. 2018, ProGAN), so D can see a
    collapsed batch. 0 (the default) leaves it out.
    """

    def __init__(
        self,
        in_dim: int = 2,
        width: int = 128,
        depth: int = 3,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        norm: str = "none",
        init: str = "default",
        minibatch_std: int = 0,
    ) -> None:
        super().__init__()
        check_at_least("in_dim", in_dim, 1)
        check_at_least("width", width, 1)
        check_at_least("depth", depth, 1)
        check_at_least("minibatch_std", minibatch_std, 0)
        self.in_dim = in_dim
        # Only built when on, so default models keep their layer indices (and checkpoints).
        batch_stats = [MinibatchStdDev(minibatch_std)] if minibatch_std else []
        self.net = nn.Sequential(
            *hidden_layers(in_dim, width, depth, norm, activation, negative_slope),
            *batch_stats,
            nn.Linear(width + len(batch_stats), 1),
        )
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(-1)
