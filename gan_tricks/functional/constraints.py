"""Lipschitz constraints on D: WGAN's weight clipping and spectral norm on its weights, and
gradient normalization of its output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gan_tricks.errors import ConfigError

__all__ = [
    "SPECTRAL_NORM_LAYERS",
    "apply_gradient_normalization",
    "apply_spectral_norm",
    "clip_weights",
    "gradient_normalized",
    "has_gradient_normalization",
    "has_spectral_norm",
]

# The layers whose weight is a linear map of the input. Torch's spectral_norm normalises the
# weight reshaped to (out, -1), taking dim 1 as "out" for transposed convolutions.
SPECTRAL_NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


@torch.no_grad()
def clip_weights(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter of ``module`` to [-clip_value, clip_value], in place.

    WGAN's crude way to keep the critic K-Lipschitz (Arjovsky et al. 2017, "Wasserstein GAN",
    Algorithm 1, c = 0.01), applied after each critic update. The authors call it "a clearly
    terrible way to enforce a Lipschitz constraint": too small a c makes gradients vanish, too
    large a c makes training slow, which is why gradient penalties replaced it.
    """
    if not clip_value > 0:
        raise ConfigError(f"the weight clipping value must be > 0 (got {clip_value}).")
    for parameter in module.parameters():
        parameter.clamp_(-clip_value, clip_value)


def _already_normalized(layer: nn.Module) -> bool:
    # New-style parametrizations, or the old hook-based torch.nn.utils.spectral_norm.
    return parametrize.is_parametrized(layer, "weight") or hasattr(layer, "weight_orig")


def apply_spectral_norm(
    module: nn.Module,
    layer_types: tuple[type[nn.Module], ...] = SPECTRAL_NORM_LAYERS,
    n_power_iterations: int = 1,
) -> int:
    """Spectrally normalise every layer of ``layer_types`` in ``module``'s tree, in place.

    Spectral normalization (Miyato et al. 2018, "Spectral normalization for generative
    adversarial networks") divides each weight by its largest singular value, estimated by
    ``n_power_iterations`` power iterations per training forward pass, so that every layer is
    1-Lipschitz. Uses ``torch.nn.utils.parametrizations.spectral_norm``: the learnable tensor
    becomes ``<layer>.parametrizations.weight.original``, which changes the state dict's keys,
    so a checkpoint of a normalised network only loads into a network normalised the same way.

    Idempotent: layers whose weight is already parametrized (or carries the old hook-based
    spectral norm) are left alone. Returns how many layers it wrapped.
    """
    if n_power_iterations < 1:
        raise ConfigError(
            f"spectral norm needs n_power_iterations >= 1 (got {n_power_iterations})."
        )
    layers = [
        layer
        for layer in module.modules()
        # Checked first: reading a normalised layer's weight would run a power iteration.
        if isinstance(layer, layer_types)
        and not _already_normalized(layer)
        and isinstance(getattr(layer, "weight", None), torch.Tensor)
    ]
    for index, layer in enumerate(layers):
        # u and v start from a fixed draw, not the global generators: the networks then do not
        # depend on what was drawn before (Lightning re-seeds each DDP process after the model
        # is built, so a 2-process run would otherwise start from other vectors than 1).
        device = layer.weight.device
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.random.default_generator.manual_seed(index)
            if cuda:
                torch.cuda.manual_seed(index)
            spectral_norm(layer, n_power_iterations=n_power_iterations)
    return len(layers)


def has_spectral_norm(module: nn.Module) -> bool:
    """Whether any layer of ``module`` carries spectral normalization (Miyato et al. 2018),
    through either torch API."""
    for layer in module.modules():
        if hasattr(layer, "weight_orig"):
            return True
        if parametrize.is_parametrized(layer, "weight"):
            weight_parametrizations = layer.parametrizations["weight"]
            if any(type(p).__name__ == "_SpectralNorm" for p in weight_parametrizations):
                return True
    return False


def gradient_normalized(
    discriminator: Callable[..., Tensor], x: Tensor, *args: Any, **kwargs: Any
) -> Tensor:
    """D's output normalized by its input gradient (Wu et al. 2021, "Gradient normalization
    for generative adversarial networks", GN-GAN eq. 9): ``f(x) / (||grad_x f(x)|| + |f(x)|)``
    per sample, and per column when D returns (N, k) logits.

    The result is bounded in (-1, 1) and D becomes 1-Lipschitz in a piecewise sense, with no
    layer changed. Training through it differentiates D twice (the graph of the gradient is
    kept); under ``torch.no_grad`` (measuring D) the same values come back detached. ``x`` keeps
    its own graph when it has one (G's fakes in G's step), so G trains through it.
    """
    training = torch.is_grad_enabled()
    with torch.enable_grad():
        inputs = x if x.requires_grad else x.detach().requires_grad_(True)
        output = discriminator(inputs, *args, **kwargs)
        columns = output.reshape(len(output), -1)
        norms = []
        for index in range(columns.shape[1]):
            (gradient,) = torch.autograd.grad(
                columns[:, index].sum(), inputs, create_graph=training, retain_graph=True
            )
            norms.append(gradient.reshape(len(gradient), -1).norm(dim=1))
        norm = torch.stack(norms, dim=1).reshape(output.shape)
        normalized = output / (norm + output.abs())
    return normalized if training else normalized.detach()


class GradientNormalizedForward:
    """A network's ``forward`` replaced by :func:`gradient_normalized` over the original one:
    the network keeps its class, parameters and state-dict keys."""

    def __init__(self, forward: Callable[..., Tensor]) -> None:
        self.original = forward

    def __call__(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return gradient_normalized(self.original, x, *args, **kwargs)


def apply_gradient_normalization(network: nn.Module) -> nn.Module:
    """Make ``network`` (D) return :func:`gradient_normalized` outputs, in place; idempotent."""
    if not isinstance(network.forward, GradientNormalizedForward):
        network.forward = GradientNormalizedForward(network.forward)
    return network


def has_gradient_normalization(network: nn.Module) -> bool:
    return isinstance(network.forward, GradientNormalizedForward)
