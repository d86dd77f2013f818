"""Layers that let the discriminator look at a whole batch, not one sample at a time.

A discriminator that judges each sample on its own cannot tell a collapsed generator (every
sample the same, each one plausible) from a diverse one. Both layers below append batch
statistics to each sample's features, so low diversity among fakes becomes visible to D and G is
pushed to spread out:

* :class:`MinibatchStdDev` (Karras et al. 2018, "Progressive growing of GANs", ProGAN; kept in
  StyleGAN/StyleGAN2): the mean standard deviation of the features across small groups of
  samples, as extra channel(s). No parameters.
* :class:`MinibatchDiscrimination` (Salimans et al. 2016, "Improved techniques for training
  GANs"): learned projections whose L1 closeness to the other samples of the batch becomes extra
  features.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gan_tricks.errors import ConfigError
from gan_tricks.layers.factories import check_at_least

__all__ = ["MinibatchDiscrimination", "MinibatchStdDev", "minibatch_group_size"]


def minibatch_group_size(batch_size: int, group_size: int) -> int:
    """The largest divisor of ``batch_size`` that is not above ``group_size``.

    StyleGAN2 uses ``min(group_size, N)`` and requires N to be divisible by it; taking the
    largest divisor instead keeps odd batches (a last short batch, a mixed real+fake batch) legal
    at the price of smaller groups: N = 6 with group_size 4 uses groups of 3, a prime N uses
    groups of 1 (standard deviation 0 everywhere).
    """
    for size in range(min(group_size, batch_size), 0, -1):
        if batch_size % size == 0:
            return size
    return 1  # batch_size 0: any group size works on an empty batch


class MinibatchStdDev(nn.Module):
    """Append the average standard deviation over groups of samples (Karras et al. 2018, ProGAN).

    The batch is split into groups of ``group_size`` samples (strided, as in ProGAN and StyleGAN2:
    sample ``n`` belongs to group ``n % (N / group_size)``). Within each group, the standard
    deviation of every feature (channel and position) is taken across the group's samples, the
    channels are split into ``num_channels`` equal parts and each part's standard deviations are
    averaged into one number; that number becomes a constant extra channel of every sample of the
    group. Shapes: (N, C, H, W) -> (N, C + num_channels, H, W) and (N, F) -> (N, F + num_channels).

    When N is not a multiple of ``group_size`` the largest divisor of N not above it is used
    (see :func:`minibatch_group_size`). The variance is the biased one (divided by the group size)
    and ``sqrt(var + eps)`` keeps the gradient finite when all samples of a group agree, so a group
    of identical samples gives ``sqrt(eps)`` (1e-4 by default), not exactly 0.

    The layer couples the samples of a batch, like BatchNorm: per-sample gradient penalties
    (WGAN-GP, R1) no longer see one sample at a time, and a mixed real+fake batch
    (``separate_batches: false``) mixes real and fake samples in one group.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        check_at_least("group_size", group_size, 1)
        check_at_least("num_channels", num_channels, 1)
        if eps <= 0:
            raise ConfigError(f"eps must be > 0 (got {eps!r}); use a small value such as 1e-8.")
        self.group_size = group_size
        self.num_channels = num_channels
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            return self.forward(x[:, :, None, None]).flatten(1)
        if x.dim() != 4:
            raise ConfigError(
                "MinibatchStdDev takes (N, F) or (N, C, H, W) inputs "
                f"(got shape {tuple(x.shape)}); place it after a linear or convolutional layer."
            )
        n, c, h, w = x.shape
        if c % self.num_channels != 0:
            raise ConfigError(
                f"MinibatchStdDev's num_channels ({self.num_channels}) must divide the number of "
                f"input channels ({c}); choose a divisor of {c}."
            )
        group = minibatch_group_size(n, self.group_size)
        parts = self.num_channels
        # [group, n / group, parts, c / parts, h, w]: dim 0 walks through one group's samples.
        y = x.reshape(group, -1, parts, c // parts, h, w).float()
        y = y - y.mean(dim=0)
        std = (y.square().mean(dim=0) + self.eps).sqrt()  # [n / group, parts, c / parts, h, w]
        std = std.mean(dim=(2, 3, 4))  # [n / group, parts]
        std = std.to(x.dtype).reshape(-1, parts, 1, 1).repeat(group, 1, h, w)  # [n, parts, h, w]
        return torch.cat([x, std], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class MinibatchDiscrimination(nn.Module):
    """Append learned closeness-to-the-batch features (Salimans et al. 2016, Section 3.2).

    Each sample's features f (N, in_features) are projected by a learned tensor T to
    ``num_kernels`` rows of ``kernel_dim`` numbers, M_i = f_i T. For every kernel b, sample i gets
    ``o_b(i) = sum_{j != i} exp(-||M_i,b - M_j,b||_1)``: large when other samples of the batch
    are close to it. Output: ``[f, o]``, shape (N, in_features + num_kernels).

    The sum leaves out j = i (the paper's code includes it, which only adds the constant 1), so a
    batch of one gets o = 0. T is drawn from N(0, 1 / in_features), which keeps the projections of
    unit-scale features at unit scale, so the exponentials neither vanish nor saturate at the
    start; model-wide ``init`` schemes leave it alone (it is not a Linear layer).
    """

    def __init__(self, in_features: int, num_kernels: int = 50, kernel_dim: int = 5) -> None:
        super().__init__()
        check_at_least("in_features", in_features, 1)
        check_at_least("num_kernels", num_kernels, 1)
        check_at_least("kernel_dim", kernel_dim, 1)
        self.in_features = in_features
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.T = nn.Parameter(
            torch.randn(in_features, num_kernels * kernel_dim) / math.sqrt(in_features)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ConfigError(
                f"MinibatchDiscrimination expects (N, {self.in_features}) features "
                f"(got shape {tuple(x.shape)}); flatten the input or set in_features to match."
            )
        m = (x @ self.T).reshape(-1, self.num_kernels, self.kernel_dim)
        l1 = (m[:, None] - m[None, :]).abs().sum(dim=-1)  # [N, N, num_kernels]
        closeness = torch.exp(-l1).sum(dim=1) - 1.0  # exp(0) = 1 is each sample's own term
        return torch.cat([x, closeness], dim=1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_kernels={self.num_kernels}, "
            f"kernel_dim={self.kernel_dim}"
        )
