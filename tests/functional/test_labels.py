"""Soft, one-sided and flipped labels: ranges, means and flip rates over many draws."""

import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional.labels import flip_labels, one_sided_labels, smooth_labels

N = 200_000


def test_smooth_labels_are_uniform_on_the_range():
    like = torch.ones(N)
    labels = smooth_labels(like, 0.7, 1.2, generator=torch.Generator().manual_seed(0))
    assert labels.shape == like.shape and labels.dtype == like.dtype
    assert labels.min() >= 0.7 and labels.max() < 1.2
    # U(a, b): mean (a + b) / 2, std (b - a) / sqrt(12); the standard error of the mean is
    # 0.5 / sqrt(12 N) ~ 3e-4, so 2e-3 is over 6 standard errors.
    assert labels.mean().item() == pytest.approx(0.95, abs=2e-3)
    assert labels.std().item() == pytest.approx(0.5 / math.sqrt(12), abs=2e-3)
    # Uniform: each tenth of the range holds a tenth of the draws.
    counts = torch.histc(labels, bins=10, min=0.7, max=1.2) / N
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=5e-3)


def test_smooth_labels_keep_the_logits_shape_and_are_seeded():
    like = torch.zeros(16, 3)
    first = smooth_labels(like, 0.0, 0.3, generator=torch.Generator().manual_seed(1))
    again = smooth_labels(like, 0.0, 0.3, generator=torch.Generator().manual_seed(1))
    assert first.shape == (16, 3) and torch.equal(first, again)
    assert len(first.unique()) == 48  # per element, not one value per batch


def test_smooth_labels_with_equal_bounds_is_constant():
    assert torch.equal(smooth_labels(torch.ones(5), 0.9, 0.9), torch.full((5,), 0.9))


def test_smooth_labels_rejects_an_inverted_range():
    with pytest.raises(ConfigError, match="low <= high"):
        smooth_labels(torch.ones(3), 1.0, 0.5)


def test_one_sided_labels_are_the_constant():
    labels = one_sided_labels(torch.ones(4, 2), 0.9)
    assert torch.equal(labels, torch.full((4, 2), 0.9))


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_flip_rate_matches_p_within_binomial_tolerance(p):
    targets = torch.ones(N)
    flipped = flip_labels(targets, p, generator=torch.Generator().manual_seed(2))
    # Flipped ones become exactly 0, the rest stay 1.
    assert set(flipped.unique().tolist()) <= {0.0, 1.0}
    rate = (flipped == 0).float().mean().item()
    assert rate == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / N))


def test_flip_maps_t_to_one_minus_t():
    targets = torch.tensor([0.9, 0.1, 0.7, 0.25])
    everything = flip_labels(targets, 1.0)
    assert torch.allclose(everything, torch.tensor([0.1, 0.9, 0.3, 0.75]))
    assert flip_labels(targets, 0.0) is targets


def test_flip_is_independent_per_element():
    # Two flips of the same targets with different draws agree on p^2 + (1-p)^2 of elements.
    p = 0.3
    rng = torch.Generator().manual_seed(3)
    a = flip_labels(torch.ones(N), p, generator=rng)
    b = flip_labels(torch.ones(N), p, generator=rng)
    both = ((a == 0) & (b == 0)).float().mean().item()
    assert both == pytest.approx(p * p, abs=5 * math.sqrt(p * p * (1 - p * p) / N))


def test_flip_rejects_a_probability_outside_zero_one():
    with pytest.raises(ConfigError, match=r"in \[0, 1\]"):
        flip_labels(torch.ones(3), 1.5)
