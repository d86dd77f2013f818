"""Packing: D judges m samples at once, so a collapsed G is easy to spot (PacGAN).

Lin et al. 2018, "PacGAN: the power of two samples in generative adversarial networks".
m fakes from a collapsed G look alike, while m reals differ; D sees it when it sees them
together, and the packed game provably penalises mode collapse more.
"""

from __future__ import annotations

from torch import Tensor

from gan_tricks.errors import ConfigError


def check_packing_degree(m: int) -> None:
    """Raise ConfigError unless m, the number of samples per pack, is an integer >= 1."""
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ConfigError(f"the packing degree m must be an integer >= 1 (got {m}).")


def pack(x: Tensor, m: int) -> Tensor:
    """Concatenate each m consecutive samples along the feature/channel axis (PacGAN).

    (N, C, H, W) -> (N // m, m * C, H, W) and (N, d) -> (N // m, m * d): packed sample k is
    samples k*m, ..., k*m + m - 1 side by side, in that order. When N is not a multiple of m
    the last N % m samples are dropped, since a pack must hold m samples. m = 1 returns ``x``.
    """
    check_packing_degree(m)
    if m == 1:
        return x
    if x.dim() < 2:
        raise ConfigError(
            f"pack needs a batch shaped (N, d) or (N, C, H, W) (got shape {tuple(x.shape)})."
        )
    if len(x) < m:
        raise ConfigError(
            f"packing m={m} samples needs batches of at least {m} samples (got {len(x)}); "
            "raise data.batch_size."
        )
    groups = len(x) // m
    return x[: groups * m].reshape(groups, m * x.shape[1], *x.shape[2:])


def unpack(x: Tensor, m: int) -> Tensor:
    """The inverse of :func:`pack`: (N, m * C, ...) -> (N * m, C, ...), samples in order."""
    check_packing_degree(m)
    if x.shape[1] % m:
        raise ConfigError(f"cannot unpack {x.shape[1]} features/channels into {m} equal parts.")
    return x.reshape(len(x) * m, x.shape[1] // m, *x.shape[2:])
