import math

import pytest
import torch

from gan_tricks.data import mixture_modes, sample_toy2d
from gan_tricks.metrics import mixture_metrics, real_data_high_quality_share


def test_real_samples_score_as_perfect():
    modes, std = mixture_modes("grid25")
    samples = sample_toy2d("grid25", 25000, torch.Generator().manual_seed(0))
    metrics = mixture_metrics(samples, modes, std)
    assert metrics["modes_covered"] == 25
    assert metrics["high_quality"] == pytest.approx(real_data_high_quality_share(), abs=0.003)
    assert metrics["reverse_kl"] < 0.005


def test_collapse_onto_two_modes_by_hand():
    modes, std = mixture_modes("ring8")
    # 3 samples exactly on mode 0, 1 on mode 1, and 1 far from every mode.
    samples = torch.stack([modes[0], modes[0], modes[0], modes[1], torch.tensor([0.0, 0.0])])
    metrics = mixture_metrics(samples, modes, std)
    assert metrics["modes_covered"] == 2
    assert metrics["high_quality"] == pytest.approx(4 / 5)
    q = [3 / 4, 1 / 4]
    assert metrics["reverse_kl"] == pytest.approx(sum(p * math.log(p * 8) for p in q))


def test_three_std_boundary():
    modes, std = mixture_modes("ring8")
    inside = modes[2] + torch.tensor([2.99 * std, 0.0])
    outside = modes[2] + torch.tensor([3.01 * std, 0.0])
    assert mixture_metrics(inside[None], modes, std)["high_quality"] == 1.0
    outside_metrics = mixture_metrics(outside[None], modes, std)
    assert outside_metrics["high_quality"] == 0.0 and outside_metrics["reverse_kl"] is None
