from __future__ import annotations

import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.layers.minibatch import (
    MinibatchDiscrimination,
    MinibatchStdDev,
    minibatch_group_size,
)


def reference_std_feature(x: torch.Tensor, group_size: int, eps: float = 1e-8) -> torch.Tensor:
    """Slow loop: the std feature of sample n from its group {m : m % (N / G) == n % (N / G)}."""
    n = len(x)
    groups = n // group_size
    out = torch.empty(n)
    for i in range(n):
        members = x[[j for j in range(n) if j % groups == i % groups]]
        variance = ((members - members.mean(0)) ** 2).mean(0)
        out[i] = (variance + eps).sqrt().mean()
    return out


@pytest.mark.parametrize(
    ("batch", "group", "expected"), [(8, 4, 4), (6, 4, 3), (7, 4, 1), (2, 4, 2), (9, 3, 3)]
)
def test_group_size_is_the_largest_divisor_not_above(batch, group, expected):
    assert minibatch_group_size(batch, group) == expected


def test_identical_samples_give_zero_std():
    x = torch.randn(1, 3, 4, 4).repeat(8, 1, 1, 1)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 4, 4)
    torch.testing.assert_close(out[:, :3], x)
    # sqrt(eps) = 1e-4 keeps the gradient finite where the variance is 0.
    torch.testing.assert_close(out[:, 3], torch.full((8, 4, 4), 1e-4))


def test_hand_computed_small_case():
    # One group of two samples with features (0, 2) and (2, 2): the per-feature standard
    # deviations are 1 and 0, their mean 0.5, appended to both samples.
    x = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    out = MinibatchStdDev(group_size=2, eps=1e-12)(x)
    torch.testing.assert_close(out, torch.tensor([[0.0, 2.0, 0.5], [2.0, 2.0, 0.5]]))


def test_groups_are_strided_and_match_a_slow_reference():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    x[1::2] *= 10  # group {1, 3, 5, 7} (odd indices, N / G = 2) has 10x the spread
    out = MinibatchStdDev(group_size=4)(x)
    torch.testing.assert_close(out[:, 5], reference_std_feature(x, 4))
    assert (out[1::2, 5] > 3 * out[0::2, 5]).all()


def test_non_divisible_batch_uses_a_smaller_group():
    torch.manual_seed(0)
    x = torch.randn(6, 3)
    out = MinibatchStdDev(group_size=4)(x)
    torch.testing.assert_close(out[:, 3], reference_std_feature(x, 3))


def test_image_input_averages_over_channels_and_positions():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3, 3)
    out = MinibatchStdDev(group_size=4)(x)
    expected = x.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert out.shape == (4, 3, 3, 3)
    torch.testing.assert_close(out[:, 2], expected.expand(4, 3, 3))


def test_num_channels_splits_the_channels():
    x = torch.zeros(2, 4, 1, 1)
    x[1, :2] = 2.0  # first half of the channels differ by 2 (std 1), second half agree
    out = MinibatchStdDev(group_size=2, num_channels=2, eps=1e-12)(x)
    assert out.shape == (2, 6, 1, 1)
    torch.testing.assert_close(out[:, 4:, 0, 0], torch.tensor([[1.0, 0.0], [1.0, 0.0]]))


def test_std_layer_gradients_flow():
    x = torch.randn(8, 3, 4, 4, requires_grad=True)
    MinibatchStdDev()(x)[:, -1].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: MinibatchStdDev(group_size=0), "group_size"),
        (lambda: MinibatchStdDev(num_channels=0), "num_channels"),
        (lambda: MinibatchStdDev(eps=0.0), "eps"),
        (lambda: MinibatchDiscrimination(0, 4, 3), "in_features"),
        (lambda: MinibatchDiscrimination(4, 0, 3), "num_kernels"),
    ],
)
def test_bad_arguments_raise(build, argument):
    with pytest.raises(ConfigError, match=argument):
        build()


def test_std_channels_must_divide_input_channels():
    with pytest.raises(ConfigError, match="divide"):
        MinibatchStdDev(num_channels=2)(torch.randn(4, 3, 2, 2))


def test_minibatch_discrimination_hand_computed():
    layer = MinibatchDiscrimination(in_features=2, num_kernels=1, kernel_dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))  # M_i = x_i
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    out = layer(x)
    # L1 distances: d01 = 1, d02 = 3, d12 = 2.
    e = math.exp
    expected = torch.tensor([e(-1) + e(-3), e(-1) + e(-2), e(-3) + e(-2)])
    torch.testing.assert_close(out[:, :2], x)
    torch.testing.assert_close(out[:, 2], expected)


def test_minibatch_discrimination_matches_a_slow_reference_and_flows_gradients():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(in_features=6, num_kernels=4, kernel_dim=3)
    x = torch.randn(5, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == (5, 10)
    m = (x @ layer.T).reshape(5, 4, 3)
    expected = torch.zeros(5, 4)
    for i in range(5):
        for j in range(5):
            if i != j:
                expected[i] += torch.exp(-(m[i] - m[j]).abs().sum(-1))
    torch.testing.assert_close(out[:, 6:], expected)
    out[:, 6:].sum().backward()
    assert layer.T.grad.abs().sum() > 0 and x.grad.abs().sum() > 0


def test_minibatch_discrimination_sees_collapse():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(in_features=8, num_kernels=5, kernel_dim=3)
    collapsed = layer(torch.randn(1, 8).repeat(6, 1))[:, 8:]
    diverse = layer(torch.randn(6, 8))[:, 8:]
    torch.testing.assert_close(collapsed, torch.full((6, 5), 5.0))  # 5 others at distance 0
    assert diverse.max() < 5.0
    assert layer(torch.randn(1, 8))[:, 8:].abs().max() == 0  # no other sample, no closeness


def test_minibatch_discrimination_rejects_wrong_features():
    with pytest.raises(ConfigError, match="in_features"):
        MinibatchDiscrimination(in_features=4)(torch.randn(2, 5))
