"""Gaussian noise for GANs: instance noise on D's inputs and noise on G's layers, annealed.

Instance noise (Sønderby et al. 2017, "Amortised MAP Inference for Image Super-resolution";
Arjovsky & Bottou 2017, "Towards Principled Methods for Training GANs") blurs real and fake
alike so that their distributions overlap and D cannot separate them perfectly: its gradients
stay informative early on, and the noise is annealed to zero so that G ends up fitting the
data, not a blurred copy of it. Noise on every layer of G is ganhacks #13 (Zhao et al. 2017,
"Energy-based Generative Adversarial Network").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from gan_tricks.errors import ConfigError

SCHEDULES = ("constant", "linear", "cosine")
GENERATOR_LAYER_TYPES = ("Linear", "Conv2d", "ConvTranspose2d")

__all__ = [
    "GENERATOR_LAYER_TYPES",
    "SCHEDULES",
    "add_gaussian_noise",
    "add_instance_noise",
    "add_layer_noise",
    "instance_noise_sigma",
    "matching_layers",
    "random_like",
]


def random_like(
    like: Tensor, distribution: str = "uniform", generator: torch.Generator | None = None
) -> Tensor:
    """U[0, 1) or N(0, 1) draws shaped like ``like``, on its device, from ``generator`` if given.

    A seeded ``torch.Generator`` lives on one device; the draws are made there and moved, so a
    CPU generator reproduces the same numbers whether the batch is on the CPU or a GPU.
    """
    draw = {"uniform": torch.rand, "normal": torch.randn}[distribution]
    dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
    if generator is None:
        return draw(like.shape, device=like.device, dtype=dtype)
    return draw(like.shape, generator=generator, device=generator.device, dtype=dtype).to(
        like.device
    )


def add_gaussian_noise(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """``x + sigma * N(0, I)``; ``x`` itself when ``sigma`` is 0 (no random numbers drawn).

    The noise under instance noise and G's layer noise (ganhacks #13).
    """
    if sigma < 0:
        raise ConfigError(f"the noise's sigma must be >= 0 (got {sigma}).")
    if sigma == 0:
        return x
    return x + sigma * random_like(x, "normal", generator)


def add_instance_noise(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """Blur a batch D is about to see with N(0, sigma^2) noise per element.

    Instance noise (Sønderby et al. 2017; Arjovsky & Bottou 2017): add it to the real and the
    fake batch alike, with the same sigma, so that their noisy distributions overlap.
    """
    return add_gaussian_noise(x, sigma, generator)


def instance_noise_sigma(step: int, sigma: float, anneal_steps: int, schedule: str) -> float:
    """The noise's std after ``step`` generator steps, annealed from ``sigma`` to 0.

    ``constant`` keeps ``sigma``; ``linear`` falls as ``sigma * (1 - step / anneal_steps)``
    (Sønderby et al. 2017 anneal linearly); ``cosine`` as ``sigma * (1 + cos(pi t)) / 2`` with
    ``t = step / anneal_steps``, which lingers near ``sigma`` and near 0. Both are 0 from
    ``anneal_steps`` on.
    """
    _check_schedule(schedule)
    if sigma < 0:
        raise ConfigError(f"the noise's sigma must be >= 0 (got {sigma}).")
    if schedule == "constant":
        return float(sigma)
    if anneal_steps < 1:
        raise ConfigError(f"anneal_steps must be at least 1 (got {anneal_steps}).")
    progress = min(max(step, 0) / anneal_steps, 1.0)
    if schedule == "linear":
        return float(sigma) * (1.0 - progress)
    return float(sigma) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ConfigError(
            f"schedule must be one of {', '.join(SCHEDULES)} (got {schedule!r}); use one of these."
        )


def matching_layers(
    module: nn.Module,
    layer_types: Iterable[str] = GENERATOR_LAYER_TYPES,
    include_output: bool = False,
) -> list[nn.Module]:
    """The layers of ``module`` whose class, or a base class of it, is named in ``layer_types``.

    Matching names through the class hierarchy also catches subclasses (a spectrally normalised
    ``ParametrizedLinear`` is a ``Linear``). Without ``include_output`` the last match, in
    registration order, is left out: it is taken to be G's output layer, whose values are the
    samples themselves.
    """
    names = set(layer_types)
    layers = [
        layer
        for layer in module.modules()
        if any(cls.__name__ in names for cls in type(layer).__mro__)
    ]
    return layers if include_output else layers[:-1]


def add_layer_noise(
    module: nn.Module,
    sigma: float | Callable[[], float],
    layer_types: Iterable[str] = GENERATOR_LAYER_TYPES,
    include_output: bool = False,
) -> list[RemovableHandle]:
    """Add N(0, sigma^2) noise to the output of every matching layer of ``module`` in train mode.

    ganhacks #13, "add noise to every layer of G" (Zhao et al. 2017, EBGAN). Works through
    forward hooks, so any network takes it without a change to its code; a layer in eval mode
    passes its output through, so sampling stays noise-free. ``sigma`` may be a function,
    read at every forward pass, to anneal the noise. See :func:`matching_layers` for which
    layers get noise. Call ``handle.remove()`` on the returned handles to take the noise off.
    """
    read_sigma = sigma if callable(sigma) else (lambda: sigma)

    def noisy_output(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
        if not layer.training:
            return output
        return add_gaussian_noise(output, read_sigma())

    return [
        layer.register_forward_hook(noisy_output)
        for layer in matching_layers(module, layer_types, include_output)
    ]
