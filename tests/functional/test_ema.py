"""The moving average of G's weights and its warm-up."""

import copy

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.ema import ema_decay_with_rampup, ema_update


def network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_one_update_is_the_weighted_mean_and_buffers_are_copied():
    model = network()
    average = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model(torch.randn(16, 3))  # moves BatchNorm's running statistics
    before = [p.clone() for p in average.parameters()]
    ema_update(average, model, 0.9)
    for old, new, current in zip(before, average.parameters(), model.parameters()):
        assert torch.allclose(new, 0.9 * old + 0.1 * current, atol=1e-6)
        assert not new.requires_grad or new.grad is None
    for ema_buffer, buffer in zip(average.buffers(), model.buffers()):
        assert torch.equal(ema_buffer, buffer)


def test_repeated_updates_towards_fixed_weights_decay_geometrically():
    model = network()
    average = copy.deepcopy(model)
    start = [p.clone() for p in average.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2.0).add_(0.5)
    for _ in range(5):
        ema_update(average, model, 0.8)
    for e0, e5, target in zip(start, average.parameters(), model.parameters()):
        assert torch.allclose(e5, target + (e0 - target) * 0.8**5, atol=1e-6)


def test_decay_zero_copies_and_decay_one_keeps():
    model, other = (
        network(),
        nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)),
    )
    kept = [p.clone() for p in other.parameters()]
    ema_update(other, model, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), kept))
    ema_update(other, model, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(other.parameters(), model.parameters()))


def test_mismatched_structure_and_bad_decay_raise():
    with pytest.raises(ConfigError, match="deepcopy"):
        ema_update(nn.Linear(3, 4), network(), 0.9)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        ema_update(network(), network(), 1.5)


def test_rampup_schedule_known_values():
    assert ema_decay_with_rampup(0, 0.999, 10) == pytest.approx(0.1)
    assert ema_decay_with_rampup(10, 0.999, 10) == pytest.approx(11 / 20)
    assert ema_decay_with_rampup(100_000, 0.999, 10) == 0.999
    assert ema_decay_with_rampup(0, 0.999, None) == 0.999
    decays = [ema_decay_with_rampup(k, 0.99, 10) for k in range(2000)]
    assert decays == sorted(decays) and decays[-1] == 0.99
