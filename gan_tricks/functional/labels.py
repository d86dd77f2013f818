"""Soft and noisy labels for D's targets (ganhacks #6; Salimans et al. 2016).

A discriminator trained on hard 1/0 targets is rewarded for ever larger logits, grows
overconfident and hands G vanishing or exploding gradients. Soft targets (drawn from a range
around 1 and 0) and occasionally flipped ones keep its outputs in a useful range.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_tricks.errors import ConfigError
from gan_tricks.functional.noise import random_like

__all__ = ["flip_labels", "one_sided_labels", "smooth_labels"]


def smooth_labels(
    like: Tensor, low: float, high: float, generator: torch.Generator | None = None
) -> Tensor:
    """Targets drawn uniformly from [low, high), one per element, shaped like ``like``.

    ganhacks #6, "use soft and noisy labels": real targets from [0.7, 1.2], fake ones from
    [0.0, 0.3] instead of 1 and 0. ``low == high`` gives the constant ``low``.
    """
    if low > high:
        raise ConfigError(f"a label range must have low <= high (got [{low}, {high}]).")
    return low + (high - low) * random_like(like, "uniform", generator)


def one_sided_labels(real_like: Tensor, real_value: float = 0.9) -> Tensor:
    """Real targets all set to ``real_value`` (Salimans et al. 2016, one-sided label smoothing).

    Only the real side is smoothed: smoothing the fake targets would reward D for keeping
    fakes at a non-zero score, where G's samples then stay (Salimans et al. 2016, section 3.4).
    Fake targets stay 0.
    """
    return torch.full_like(real_like, real_value)


def flip_labels(targets: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Flip each target ``t -> 1 - t`` independently with probability ``p``.

    ganhacks #6, "occasionally flip the labels when training the discriminator". Applied to
    soft targets, a flipped 0.9 becomes 0.1.
    """
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"the flip probability p must be in [0, 1] (got {p}).")
    if p == 0:
        return targets
    flipped = random_like(targets, "uniform", generator) < p
    return torch.where(flipped, 1.0 - targets, targets)
