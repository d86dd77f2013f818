"""Layer factories: every layer a model uses is picked by a short name from a recipe.

Models never hard-code a layer type, so an ablation ("leaky_relu instead of relu", "pixel
shuffle instead of transposed convs") is a one-word change in YAML. Each factory validates its
name and raises :class:`~gan_tricks.errors.ConfigError` listing the valid names, and each name
tuple below is public so docs and CLI help can show the choices.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from gan_tricks.errors import ConfigError

ACTIVATIONS = (
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "identity",
    "none",
)
NORMS = ("batch", "instance", "layer", "none")
UPSAMPLES = ("transpose", "pixelshuffle", "nearest")
DOWNSAMPLES = ("stride", "avgpool")
INITS = ("dcgan", "orthogonal", "xavier", "kaiming", "default")

__all__ = [
    "ACTIVATIONS",
    "DOWNSAMPLES",
    "INITS",
    "NORMS",
    "UPSAMPLES",
    "check_at_least",
    "check_choice",
    "init_weights",
    "make_activation",
    "make_downsample",
    "make_norm",
    "make_upsample",
]


def check_choice(arg_name: str, value: object, valid: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``valid``, else raise a ConfigError naming ``arg_name``.

    Models pass their own argument name (e.g. ``out_activation``) so the message points at the
    setting the user actually wrote, not at the factory's internal parameter.
    """
    if value not in valid:
        raise ConfigError(
            f"{arg_name} must be one of {', '.join(valid)} (got {value!r}); use one of these names."
        )
    return value  # type: ignore[return-value]


def check_at_least(arg_name: str, value: float, minimum: float) -> None:
    """Raise a ConfigError naming ``arg_name`` if ``value`` is below ``minimum``.

    Sizes like ``width=0`` would otherwise build silently empty layers and fail much later.
    """
    if value < minimum:
        raise ConfigError(
            f"{arg_name} must be at least {minimum} (got {value!r}); raise it to {minimum} or more."
        )


def make_activation(
    name: str, negative_slope: float = 0.2, *, arg_name: str = "activation"
) -> nn.Module:
    """Build a non-linearity by name.

    ``negative_slope`` is only used by ``leaky_relu``; 0.2 is the DCGAN discriminator's slope
    (Radford et al. 2016). ``none`` is an alias of ``identity`` because YAML recipes read more
    naturally with ``out_activation: none``.
    """
    check_choice(arg_name, name, ACTIVATIONS)
    builders: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(negative_slope),
        "elu": nn.ELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "identity": nn.Identity,
        "none": nn.Identity,
    }
    return builders[name]()


def make_norm(name: str, num_features: int, dims: int = 2, *, arg_name: str = "norm") -> nn.Module:
    """Build a normalization layer for ``num_features`` channels.

    ``dims=2`` is for feature maps (N, C, H, W), ``dims=1`` for vectors (N, C).
    ``layer`` on feature maps is ``GroupNorm(1, C)``, which normalizes each sample over C, H and W
    together: the per-sample normalization WGAN-GP critics use instead of batch norm, because
    batch norm couples samples and breaks the per-sample gradient penalty.
    """
    check_choice(arg_name, name, NORMS)
    if dims not in (1, 2):
        raise ConfigError(f"dims must be 1 or 2 (got {dims!r}); use 1 for vectors, 2 for images.")
    if name == "instance" and dims == 1:
        raise ConfigError(
            f"{arg_name} 'instance' needs spatial dimensions and cannot normalize vectors; "
            f"use 'batch', 'layer' or 'none' for MLP models."
        )
    if name == "batch":
        return nn.BatchNorm2d(num_features) if dims == 2 else nn.BatchNorm1d(num_features)
    if name == "instance":
        return nn.InstanceNorm2d(num_features, affine=True)
    if name == "layer":
        return nn.GroupNorm(1, num_features) if dims == 2 else nn.LayerNorm(num_features)
    return nn.Identity()


def make_upsample(
    name: str, in_channels: int, out_channels: int, *, arg_name: str = "upsample"
) -> nn.Module:
    """Build a layer that doubles H and W and maps ``in_channels`` to ``out_channels``.

    ``transpose`` is DCGAN's fractionally-strided conv (Radford et al. 2016). Its kernel (4)
    overlaps unevenly with its stride (2), which is the classic source of checkerboard artifacts;
    ``pixelshuffle`` and ``nearest`` are the usual artifact-free alternatives.
    """
    check_choice(arg_name, name, UPSAMPLES)
    if name == "transpose":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
    if name == "pixelshuffle":
        return nn.Sequential(
            nn.Conv2d(in_channels, 4 * out_channels, kernel_size=3, padding=1),
            nn.PixelShuffle(2),
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
    )


def make_downsample(
    name: str, in_channels: int, out_channels: int, *, arg_name: str = "downsample"
) -> nn.Module:
    """Build a layer that halves H and W and maps ``in_channels`` to ``out_channels``.

    ``stride`` is DCGAN's strided conv, which replaces pooling (Radford et al. 2016); ``avgpool``
    is the conv-then-average-pool downsampling of SNGAN's discriminator (Miyato et al. 2018).
    """
    check_choice(arg_name, name, DOWNSAMPLES)
    if name == "stride":
        return nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.AvgPool2d(2),
    )


_WEIGHTED_LAYERS = (nn.modules.conv._ConvNd, nn.Linear)
_NORMS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def _raw_weight(layer: nn.Module) -> torch.Tensor:
    # With spectral norm (or any parametrization) applied, ``layer.weight`` is a computed tensor;
    # the learnable one to initialize is the original.
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Re-initialize every conv, transposed conv and linear layer (and norm affine params).

    Schemes:

    * ``dcgan``: weights N(0, 0.02), biases 0, norm weights N(1, 0.02), norm biases 0, as
      prescribed by Radford et al. 2016.
    * ``orthogonal``: orthogonal weights, common for SNGAN/BigGAN-style models because they keep
      singular values at 1, the regime spectral normalization enforces anyway.
    * ``xavier``: ``xavier_uniform_``, used by the SNGAN reference code (Miyato et al. 2018).
    * ``kaiming``: ``kaiming_normal_`` with fan_in for (leaky) ReLU networks.
    * ``default``: leave PyTorch's own initialization.

    For all schemes but ``default``, layer biases become 0 and norm affine params (1, 0) (or the
    DCGAN noise around 1). A layer may carry a float attribute ``initial_bias`` to keep a
    deliberate bias through re-initialization; highway gates use it to start near the carry path.
    Returns ``module`` so the call can be chained.
    """
    check_choice("init", scheme, INITS)
    if scheme == "default":
        return module

    weight_inits: dict[str, Callable[[torch.Tensor], object]] = {
        "dcgan": lambda weight: nn.init.normal_(weight, mean=0.0, std=0.02),
        "orthogonal": nn.init.orthogonal_,
        "xavier": nn.init.xavier_uniform_,
        # a=0 gives the ReLU gain; for leaky slopes like 0.2 the gain differs by ~2%.
        "kaiming": lambda weight: nn.init.kaiming_normal_(
            weight, a=0.0, mode="fan_in", nonlinearity="leaky_relu"
        ),
    }
    init_weight = weight_inits[scheme]

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, _WEIGHTED_LAYERS):
                init_weight(_raw_weight(layer))
                if layer.bias is not None:
                    nn.init.constant_(layer.bias, getattr(layer, "initial_bias", 0.0))
            elif isinstance(layer, _NORMS):
                if getattr(layer, "weight", None) is not None:
                    if scheme == "dcgan":
                        nn.init.normal_(layer.weight, mean=1.0, std=0.02)
                    else:
                        nn.init.ones_(layer.weight)
                if getattr(layer, "bias", None) is not None:
                    nn.init.zeros_(layer.bias)
    return module
