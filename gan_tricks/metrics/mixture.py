"""Mode coverage on 2D Gaussian mixtures, with the protocol of PacGAN's released code.

Lin et al. 2018 ("PacGAN: The power of two samples in generative adversarial networks"),
also VEEGAN (Srivastava et al. 2017): a sample is *high quality* when it lies within three
standard deviations of its nearest mode; a mode is *covered* when at least one high-quality
sample is nearest to it; the reverse KL is KL(q || uniform) where q is the share of
high-quality samples on each mode.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def mixture_metrics(samples: Tensor, modes: Tensor, std: float) -> dict[str, float | int | None]:
    """Modes covered, high-quality share and reverse KL of ``samples`` (N, 2).

    ``reverse_kl`` is None when no sample is of high quality (q is then undefined).
    """
    samples = samples.detach().double().cpu()
    modes = modes.detach().double().cpu()
    distances = torch.cdist(samples, modes)
    nearest_distance, nearest_mode = distances.min(dim=1)
    high_quality = nearest_distance <= 3 * std
    counts = torch.bincount(nearest_mode[high_quality], minlength=len(modes)).double()
    n_high_quality = int(counts.sum())
    reverse_kl = None
    if n_high_quality > 0:
        q = counts[counts > 0] / n_high_quality
        reverse_kl = float((q * (q * len(modes)).log()).sum())
    return {
        "modes_covered": int((counts > 0).sum()),
        "num_modes": len(modes),
        "high_quality": float(high_quality.double().mean()),
        "reverse_kl": reverse_kl,
        "num_samples": len(samples),
    }


def real_data_high_quality_share() -> float:
    """The high-quality share of perfect samples in 2D: P(|x - mu| <= 3 sigma) = 1 - e^-4.5."""
    return 1 - math.exp(-4.5)
