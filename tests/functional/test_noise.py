"""Gaussian noise, its annealing schedules, and noise hooks on a network's layers."""

import itertools
import math

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.noise import (
    add_gaussian_noise,
    add_instance_noise,
    add_layer_noise,
    instance_noise_sigma,
    matching_layers,
    random_like,
)

N = 200_000


def test_instance_noise_has_the_asked_std_and_zero_mean():
    x = torch.full((N,), 3.0)
    noisy = add_instance_noise(x, 0.25, generator=torch.Generator().manual_seed(0))
    noise = noisy - x
    assert noise.mean().item() == pytest.approx(0.0, abs=5 * 0.25 / math.sqrt(N))
    # std of a sample std of N Gaussians is sigma / sqrt(2N) ~ 4e-4
    assert noise.std().item() == pytest.approx(0.25, abs=3e-3)


def test_zero_sigma_returns_the_input_untouched():
    x = torch.randn(8)
    assert add_instance_noise(x, 0.0) is x


def test_noise_is_seeded_and_independent_of_the_global_rng():
    x = torch.zeros(100)
    torch.manual_seed(5)
    a = add_gaussian_noise(x, 1.0, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(6)
    b = add_gaussian_noise(x, 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_random_like_keeps_shape_dtype_and_gives_floats_for_integer_input():
    assert random_like(torch.zeros(2, 3, dtype=torch.float64)).dtype == torch.float64
    assert random_like(torch.zeros(4, dtype=torch.long), "normal").is_floating_point()


def test_negative_sigma_is_an_error():
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        add_gaussian_noise(torch.zeros(2), -0.1)


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, 0.4),
        ("constant", 10_000, 0.4),
        ("linear", 0, 0.4),
        ("linear", 25, 0.3),
        ("linear", 50, 0.2),
        ("linear", 100, 0.0),
        ("linear", 150, 0.0),
        ("cosine", 0, 0.4),
        ("cosine", 50, 0.2),  # cos(pi/2) = 0: half way
        ("cosine", 25, 0.2 * (1 + math.cos(math.pi / 4))),
        ("cosine", 100, 0.0),
        ("cosine", 1000, 0.0),
    ],
)
def test_sigma_schedule_at_known_steps(schedule, step, expected):
    assert instance_noise_sigma(step, 0.4, 100, schedule) == pytest.approx(expected, abs=1e-12)


def test_sigma_schedule_is_monotone_decreasing():
    for schedule in ("linear", "cosine"):
        values = [instance_noise_sigma(s, 1.0, 40, schedule) for s in range(50)]
        assert all(a >= b for a, b in itertools.pairwise(values))


def test_bad_schedule_settings_are_errors():
    with pytest.raises(ConfigError, match="schedule must be one of"):
        instance_noise_sigma(0, 0.1, 10, "exponential")
    with pytest.raises(ConfigError, match="anneal_steps must be at least 1"):
        instance_noise_sigma(0, 0.1, 0, "linear")


def small_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.Linear(64, 3))


def test_matching_layers_skips_the_output_layer_unless_asked():
    net = small_net()
    assert matching_layers(net) == [net[0], net[2]]
    assert matching_layers(net, include_output=True) == [net[0], net[2], net[3]]
    assert matching_layers(net, layer_types=("ReLU",), include_output=True) == [net[1]]


def test_matching_layers_sees_subclasses():
    class MyLinear(nn.Linear):
        pass

    net = nn.Sequential(MyLinear(2, 2), nn.Linear(2, 2))
    assert matching_layers(net) == [net[0]]


def test_layer_noise_has_the_right_std_in_train_mode_and_none_in_eval():
    net = nn.Sequential(nn.Linear(3, 3), nn.Identity(), nn.Linear(3, 3))
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.copy_(torch.eye(3))
            layer.bias.zero_()
    seen = {}
    net[1].register_forward_hook(lambda m, i, out: seen.update(hidden=out))
    handles = add_layer_noise(net, 0.5)
    x = torch.zeros(N // 3, 3)
    torch.manual_seed(0)
    net.train()
    out = net(x)
    # Only the first Linear is noised (the last one is the output): out == hidden.
    assert seen["hidden"].std().item() == pytest.approx(0.5, abs=5e-3)
    assert torch.equal(out, seen["hidden"])
    net.eval()
    assert torch.equal(net(x), x)
    for handle in handles:
        handle.remove()
    net.train()
    assert torch.equal(net(x), x)  # removed handles add nothing


def test_layer_noise_reads_a_callable_sigma_at_every_call():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    sigma = {"value": 0.0}
    add_layer_noise(net, lambda: sigma["value"], include_output=True)
    x = torch.zeros(20_000, 2)
    with torch.no_grad():
        clean = net(x)  # sigma 0: deterministic
        assert torch.equal(clean, net(x))
        sigma["value"] = 2.0
        assert not torch.equal(clean, net(x))
