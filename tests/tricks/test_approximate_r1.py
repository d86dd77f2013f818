"""Approximate R1: the finite difference by hand, its expectation against exact R1, and the
trick in a fit, where, unlike the exact penalties, a compiled run is accepted."""

import pytest
import torch
from torch import nn

from gan_tricks.engine import Networks, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, approximate_r1, get_loss, gradient_penalty
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks import ApproximateR1, GradientPenalty


def linear(weights: list[float]) -> nn.Linear:
    layer = nn.Linear(len(weights), 1, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        layer.bias.fill_(0.3)
    return layer


def context(discriminator: nn.Module, real: torch.Tensor, compiled: bool = False) -> StepContext:
    return StepContext(
        networks=Networks(nn.Identity(), discriminator),
        latent=Latent(dim=2),
        loss=get_loss("nonsaturating"),
        phase="d",
        real=real,
        real_logits=discriminator(real).reshape(-1),
        compiled=compiled,
    )


def test_the_finite_difference_by_hand_on_a_linear_d():
    d = linear([3.0, -4.0])
    real = torch.tensor([[0.5, 1.0], [-1.0, 2.0]])
    penalty = approximate_r1(d, real, sigma=0.1, generator=torch.Generator().manual_seed(5))
    eps = torch.randn(2, 2, generator=torch.Generator().manual_seed(5))
    # D(x) - D(x + s eps) = -s (w . eps): the bias and x cancel.
    by_hand = ((0.1 * (eps @ torch.tensor([3.0, -4.0]))) ** 2).mean()
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="sigma > 0"):
        approximate_r1(d, real, sigma=0.0)


def test_its_expectation_is_sigma_squared_times_r1():
    d = linear([3.0, -4.0])  # ||w||^2 = 25 everywhere
    real = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    assert approximate_r1(d, real, sigma=0.01).item() == pytest.approx(25e-4, rel=0.05)

    # A curved D: for small sigma, the trick's term approaches R1's gamma / 2 * E||grad||^2.
    torch.manual_seed(2)
    mlp = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1))
    real = torch.randn(8192, 2, generator=torch.Generator().manual_seed(3))
    ctx = context(mlp, real)
    exact = GradientPenalty(kind="r1", weight=2.0).d_penalty(ctx).item()
    approximate = ApproximateR1(weight=2.0, sigma=1e-3).d_penalty(ctx).item()
    assert exact == pytest.approx(gradient_penalty(mlp, real, kind="r1").item())
    assert approximate == pytest.approx(exact, rel=0.06)


def test_no_double_backward_so_a_compiled_run_is_accepted_and_batchnorm_is_not():
    d = linear([1.0, 1.0])
    real = torch.randn(16, 2)
    ApproximateR1().check_compatibility(context(d, real, compiled=True), [])
    with pytest.raises(ConfigError, match="torch.compile"):
        GradientPenalty(kind="r1").check_compatibility(context(d, real, compiled=True), [])
    with_norm = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with pytest.raises(ConfigError, match="BatchNorm"):
        ApproximateR1().check_compatibility(context(with_norm, real), [])
    # The penalty's graph needs a plain backward only.
    d.zero_grad()
    approximate_r1(d, real.requires_grad_(False), sigma=0.1).backward()
    assert d.weight.grad is not None and d.weight.grad.abs().sum() > 0


def test_lazy_steps_and_state_then_a_fit_logs_the_term():
    trick = ApproximateR1(weight=1.0, sigma=0.05, every=3)
    ctx = context(linear([1.0, 2.0]), torch.randn(8, 2))
    due = [trick.d_penalty(ctx) is not None for _ in range(6)]
    assert due == [True, False, False, True, False, False]
    copy = ApproximateR1(every=3)
    copy.load_state_dict(trick.state_dict())
    assert copy.d_steps == 6
    with pytest.raises(ConfigError, match="every"):
        ApproximateR1(every=0)

    module = tiny_gan_module(tricks=[ApproximateR1(weight=1.0, sigma=0.01)])
    fit_briefly(module, 3, log_every_n_steps=1)
    term = module.signals.d_penalties["ApproximateR1"]
    assert torch.isfinite(term) and term > 0
