"""Gradient penalties, lazy regularization and LeCam against values worked out by hand."""

import math

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.penalties import (
    PENALTY_KINDS,
    dragan_points,
    gradient_penalty,
    interpolate,
    lazy_regularization_weight,
    lecam_penalty,
    update_ema,
)


def linear_critic(weights: list[float], columns: int = 1) -> nn.Module:
    """D(x) = w . x + b: its gradient is w everywhere, so ||grad|| = ||w|| at every point."""
    layer = nn.Linear(len(weights), columns)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights).repeat(columns, 1))
        layer.bias.fill_(0.7)
    return layer


class HalfSquaredNorm(nn.Module):
    """D(x) = 0.5 ||x||^2 per sample: its gradient is x itself."""

    def forward(self, x):
        return 0.5 * x.reshape(len(x), -1).pow(2).sum(dim=1)


def batches(n=64, d=3, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=rng) * 2, torch.randn(n, d, generator=rng) + 3


@pytest.mark.parametrize("kind", ["wgan-gp", "dragan"])
@pytest.mark.parametrize("weights", [[3.0, 4.0, 0.0], [0.3, 0.4, 0.0]])
def test_two_sided_penalties_of_a_linear_critic(kind, weights):
    real, fake = batches()
    penalty = gradient_penalty(linear_critic(weights), real, fake, kind)
    norm = math.sqrt(sum(w * w for w in weights))
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)


def test_one_sided_penalty_is_zero_below_one_and_squared_above():
    real, fake = batches()
    assert gradient_penalty(linear_critic([0.3, 0.4, 0.0]), real, fake, "one-sided").item() == 0
    steep = gradient_penalty(linear_critic([3.0, 4.0, 0.0]), real, fake, "one-sided")
    assert steep.item() == pytest.approx(16.0, rel=1e-5)


def test_penalties_work_on_images():
    images = torch.randn(8, 2, 3, 3)
    critic = nn.Sequential(nn.Flatten(), linear_critic([0.5] * 18))
    expected = (math.sqrt(18 * 0.25) - 1) ** 2
    assert gradient_penalty(critic, images, images.flip(0)).item() == pytest.approx(expected)
    r1 = gradient_penalty(HalfSquaredNorm(), images, None, "r1")
    assert r1.item() == pytest.approx(images.pow(2).sum(dim=(1, 2, 3)).mean().item(), rel=1e-5)


def test_r1_and_r2_of_half_squared_norm_are_the_mean_squared_norm_of_their_batch():
    real, fake = batches()
    r1 = gradient_penalty(HalfSquaredNorm(), real, None, "r1")
    r2 = gradient_penalty(HalfSquaredNorm(), None, fake, "r2")
    assert r1.item() == pytest.approx(real.pow(2).sum(dim=1).mean().item(), rel=1e-5)
    assert r2.item() == pytest.approx(fake.pow(2).sum(dim=1).mean().item(), rel=1e-5)


def test_wgan_gp_is_taken_at_the_interpolates():
    # D(x) = 0.5 ||x||^2 has gradient x, so the penalty is E[(||x_hat|| - 1)^2] at the very
    # interpolates that the same seed draws.
    real, fake = batches()
    points = interpolate(real, fake, generator=torch.Generator().manual_seed(5))
    expected = (points.norm(dim=1) - 1).pow(2).mean()
    penalty = gradient_penalty(
        HalfSquaredNorm(), real, fake, "wgan-gp", generator=torch.Generator().manual_seed(5)
    )
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)


def test_interpolates_lie_on_the_segments_with_uniform_position():
    real, fake = batches(n=4000, d=2)
    real, fake = real + 10, fake - 20  # far apart, so dividing by their difference is exact
    points = interpolate(real, fake, generator=torch.Generator().manual_seed(0))
    position = (points - fake) / (real - fake)  # one e per sample, the same in every column
    assert torch.allclose(position[:, 0], position[:, 1], atol=1e-4)
    assert position.min() >= 0 and position.max() <= 1
    assert position[:, 0].mean().item() == pytest.approx(0.5, abs=0.02)
    assert position[:, 0].var().item() == pytest.approx(1 / 12, abs=0.005)


def test_dragan_points_are_perturbed_upwards_by_at_most_half_a_std():
    real = torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)) * 3
    points = dragan_points(real, scale=0.5, generator=torch.Generator().manual_seed(1))
    shift = (points - real) / (0.5 * real.std())  # alpha * u, both U(0, 1)
    assert shift.min() >= 0 and shift.max() <= 1
    assert shift.mean().item() == pytest.approx(0.25, abs=0.01)  # E[alpha] E[u]


def test_penalties_of_several_discriminators_add_up():
    real, fake = batches()
    critic = nn.Linear(3, 2)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]]))
    penalty = gradient_penalty(critic, real, fake, "wgan-gp")
    assert penalty.item() == pytest.approx((5 - 1) ** 2 + (2 - 1) ** 2, rel=1e-5)
    r1 = gradient_penalty(critic, real, None, "r1")
    assert r1.item() == pytest.approx(25 + 4, rel=1e-5)


def test_penalty_trains_the_critic_through_a_double_backward():
    real, fake = batches()
    critic = linear_critic([3.0, 4.0, 0.0])
    gradient_penalty(critic, real, fake, "wgan-gp").backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (5 - 1) * torch.tensor([[3.0, 4.0, 0.0]]) / 5
    assert torch.allclose(critic.weight.grad, expected, rtol=1e-4)


@pytest.mark.parametrize("kind", PENALTY_KINDS)
def test_penalty_gradient_of_a_nonlinear_critic_matches_finite_differences(kind):
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    with torch.no_grad():
        critic[2].weight.mul_(10)
    real, fake = (b.double() for b in batches(n=8))

    def penalty():
        rng = torch.Generator().manual_seed(1)
        return gradient_penalty(critic, real, fake, kind, generator=rng)

    penalty().backward()
    weight = critic[0].weight
    analytic = weight.grad[2, 1].item()
    with torch.no_grad():
        weight[2, 1] += 1e-6
        upper = penalty().item()
        weight[2, 1] -= 2e-6
        lower = penalty().item()
    assert analytic == pytest.approx((upper - lower) / 2e-6, rel=1e-4, abs=1e-8)
    assert analytic != 0


@pytest.mark.parametrize("kind", PENALTY_KINDS)
def test_penalties_are_reproducible_with_a_generator(kind):
    real, fake = batches()
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    with torch.no_grad():
        critic[2].weight.mul_(20)  # steep enough for the one-sided penalty to bite
    first, second = (
        gradient_penalty(critic, real, fake, kind, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    )
    assert torch.equal(first, second) and first.item() > 0


def test_bad_kind_and_unequal_batches_are_config_errors():
    real, fake = batches()
    with pytest.raises(ConfigError, match="kind must be one of"):
        gradient_penalty(linear_critic([1.0, 0.0, 0.0]), real, fake, "wgan")
    with pytest.raises(ConfigError, match="same shape"):
        gradient_penalty(linear_critic([1.0, 0.0, 0.0]), real, fake[:10])


def test_lazy_regularization_multiplies_by_the_interval():
    assert lazy_regularization_weight(10.0, 1) == 10.0
    assert lazy_regularization_weight(0.05, 16) == pytest.approx(0.8)
    with pytest.raises(ConfigError, match="at least 1"):
        lazy_regularization_weight(10.0, 0)


def test_lecam_by_hand():
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([-2.0, 0.0])
    # (1 - 0.5)^2, (3 - 0.5)^2 -> mean 3.25;  (-2 - 1)^2, (0 - 1)^2 -> mean 5
    penalty = lecam_penalty(real, fake, ema_real=torch.tensor(1.0), ema_fake=torch.tensor(0.5))
    assert penalty.item() == pytest.approx(3.25 + 5.0)


def test_lecam_of_several_discriminators_sums_their_penalties():
    real = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    fake = torch.tensor([[-2.0, 1.0], [0.0, 1.0]])
    penalty = lecam_penalty(real, fake, torch.tensor([1.0, 0.0]), torch.tensor([0.5, 1.0]))
    assert penalty.item() == pytest.approx(3.25 + 5.0 + 1.0 + 1.0)


def test_update_ema_starts_at_the_value_and_then_averages():
    ema = update_ema(torch.tensor(4.0), None, 0.9)
    assert ema.item() == 4.0
    ema = update_ema(torch.tensor(14.0), ema, 0.9)
    assert ema.item() == pytest.approx(0.9 * 4 + 0.1 * 14)
    assert not update_ema(torch.tensor(1.0, requires_grad=True), ema, 0.9).requires_grad


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", PENALTY_KINDS)
def test_penalties_on_cuda_with_a_cpu_generator(kind):
    real, fake = (b.cuda() for b in batches())
    critic = linear_critic([3.0, 4.0, 0.0]).cuda()
    penalty = gradient_penalty(critic, real, fake, kind, generator=torch.Generator())
    assert penalty.device.type == "cuda"
    expected = {"r1": 25.0, "r2": 25.0}.get(kind, 16.0)
    assert penalty.item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("kind", ["r1", "wgan-gp"])
def test_penalty_under_bf16_autocast_is_the_fp32_penalty(kind):
    # Mixed precision must not coarsen the penalty: its pass runs with autocast off on D's fp32
    # weights, so value and weight gradients are those of a plain fp32 computation, even for a
    # fake batch that a generator made in bf16.
    from gan_tricks.models import DCGANDiscriminator

    torch.manual_seed(0)
    critic = DCGANDiscriminator(image_size=16, channels=1, width=8, norm="none")
    real, fake = torch.randn(16, 1, 16, 16), torch.randn(16, 1, 16, 16)

    def penalty_and_gradients(autocast: bool):
        critic.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            fake_in = fake.bfloat16() if autocast else fake
            penalty = gradient_penalty(
                critic, real, fake_in, kind, generator=torch.Generator().manual_seed(1)
            )
        penalty.backward()
        return penalty.detach(), [p.grad.clone() for p in critic.parameters() if p.grad is not None]

    exact, exact_grads = penalty_and_gradients(False)
    mixed, mixed_grads = penalty_and_gradients(True)
    assert mixed.dtype == torch.float32
    if kind == "r1":  # the bf16 fake plays no part
        assert torch.equal(mixed, exact)
        assert all(torch.equal(a, b) for a, b in zip(mixed_grads, exact_grads))
    else:  # interpolates with the fake rounded to bf16: close, not equal
        torch.testing.assert_close(mixed, exact, rtol=2e-2, atol=0)
