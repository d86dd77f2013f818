"""Fail-fast checks that the data and the generator agree on the range of a sample.

ganhacks #1: normalise images to [-1, 1] and end the generator in tanh (Radford et al. 2016,
DCGAN). Data outside G's range can never be matched; [0, 1] data under tanh wastes half of
G's range; images in [-1, 1] from an unbounded G leave G to learn the bounds on its own.
"""

from __future__ import annotations

from torch import Tensor, nn

from gan_tricks.errors import ConfigError

# Data may overshoot a bound by float rounding (normalising 0 with mean 0.5, std 0.5).
RANGE_TOLERANCE = 1e-3

__all__ = ["RANGE_TOLERANCE", "check_input_range", "output_layer", "output_range"]


def output_layer(generator: nn.Module) -> nn.Module:
    """G's last leaf module in registration order: the layer taken to make its samples."""
    leaves = [module for module in generator.modules() if next(module.children(), None) is None]
    return leaves[-1]


def output_range(generator: nn.Module) -> tuple[float, float] | None:
    """The range G's output layer bounds its samples to, or None when it is unbounded.

    Read from G's last leaf module (:func:`output_layer`): Tanh gives [-1, 1], Sigmoid and
    Hardsigmoid [0, 1], Hardtanh (and ReLU6) its min and max; anything else is unbounded. A
    ``torch.tanh`` called inside ``forward`` is invisible here: use an ``nn.Tanh`` module.
    """
    layer = output_layer(generator)
    if isinstance(layer, nn.Tanh):
        return (-1.0, 1.0)
    if isinstance(layer, nn.Sigmoid | nn.Hardsigmoid):
        return (0.0, 1.0)
    if isinstance(layer, nn.Hardtanh):
        return (float(layer.min_val), float(layer.max_val))
    return None


def _describe(bounds: tuple[float, float]) -> str:
    name = {(-1.0, 1.0): "tanh", (0.0, 1.0): "sigmoid"}.get(bounds, "a bounded activation")
    return f"{name} ([{bounds[0]:g}, {bounds[1]:g}])"


def check_input_range(
    real: Tensor, output_range: tuple[float, float] | None, is_image: bool
) -> None:
    """Raise ConfigError when real data and G's output range disagree (ganhacks #1).

    Three mistakes: the data leaves G's bounded range (e.g. [0, 255] images under tanh); G
    ends in a range reaching below 0 (tanh) but the data never does ([0, 1] images: half of
    G's range unused); image data under a G that is unbounded (no tanh). ``output_range`` is
    :func:`output_range` of G, ``is_image`` whether ``real`` holds images.
    """
    low, high = float(real.min()), float(real.max())
    spans = f"real data spans [{low:.3g}, {high:.3g}]"
    if output_range is not None:
        bottom, top = output_range
        if low < bottom - RANGE_TOLERANCE or high > top + RANGE_TOLERANCE:
            raise ConfigError(
                f"{spans} but the generator ends in {_describe(output_range)}; scale the data "
                f"to [{bottom:g}, {top:g}]."
            )
        if bottom < 0 and low >= 0:
            raise ConfigError(
                f"{spans} but the generator ends in {_describe(output_range)}, so its negative "
                f"half is never used; scale the data to [{bottom:g}, {top:g}] (x * 2 - 1 for "
                "[0, 1] data)."
            )
    elif is_image:
        in_tanh_range = low >= -1 - RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE
        fix = "end the generator in tanh"
        if not in_tanh_range:
            fix = "scale the images to [-1, 1] and " + fix
        raise ConfigError(
            f"real images span [{low:.3g}, {high:.3g}] but the generator's output is unbounded; "
            f"{fix} (nn.Tanh as its last module, ganhacks #1)."
        )
