"""Small MLP generator and discriminator for 2-D toy data (rings of Gaussians, spirals, ...).

Toy data is where mode collapse and oscillation are visible at a glance and runs take seconds,
so every trick is first checked here before paying for image experiments.
"""

from __future__ import annotations

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
    """Map latent vectors (N, latent_dim) to samples (N, out_dim).

    Each of the ``depth`` hidden layers is ``Linear -> norm -> act (-> Dropout)``. Dropout in the
    generator is folklore from the "GAN hacks" list (and pix2pix, Isola et al. 2017, which uses it
    as the noise source); the module is only added when ``dropout > 0`` so the default model has
    no train/eval difference.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        out_dim: int = 2,
        width: int = 128,
        depth: int = 3,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
        out_activation: str = "identity",
        init: str = "default",
    ) -> None:
        super().__init__()
        check_at_least("latent_dim", latent_dim, 1)
        check_at_least("out_dim", out_dim, 1)
        check_at_least("width", width, 1)
        check_at_least("depth", depth, 1)
        check_dropout(dropout)
        self.latent_dim = latent_dim
        self.out_dim = out_dim
        self.net = nn.Sequential(
            *hidden_layers(latent_dim, width, depth, norm, activation, dropout=dropout),
            nn.Linear(width, out_dim),
            make_activation(out_activation, arg_name="out_activation"),
        )
        init_weights(self, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Map samples (N, in_dim) to real/fake logits (N,).

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
        return self.net(x).squeeze(-1)
