"""A layer that adds Gaussian noise in training mode, for generators built by hand."""

from __future__ import annotations

from torch import Tensor, nn

from gan_tricks.functional.noise import add_gaussian_noise
from gan_tricks.layers.factories import check_at_least

__all__ = ["NoiseInjection"]


class NoiseInjection(nn.Module):
    """``x + N(0, sigma^2)`` in training mode, ``x`` in eval mode.

    ganhacks #13, "add noise to every layer of G" (Zhao et al. 2017, EBGAN): place one after
    each hidden layer of a generator. Eval-mode sampling is noise-free. ``sigma`` is a plain
    attribute, not a buffer, so the layer adds nothing to the state dict and can be annealed
    by assigning to it. For a generator you cannot edit, ``gan_tricks.functional.noise.
    add_layer_noise`` does the same through forward hooks.
    """

    def __init__(self, sigma: float = 0.1) -> None:
        super().__init__()
        check_at_least("sigma", sigma, 0.0)
        self.sigma = float(sigma)

    def forward(self, x: Tensor) -> Tensor:
        return add_gaussian_noise(x, self.sigma) if self.training else x

    def extra_repr(self) -> str:
        return f"sigma={self.sigma:g}"
