"""Weight clipping and spectral norm: bounds, singular values, idempotence, state dicts."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gan_tricks.errors import ConfigError
from gan_tricks.functional.constraints import (
    apply_spectral_norm,
    clip_weights,
    has_spectral_norm,
)


def mixed_network() -> nn.Module:
    """One of each layer kind spectral norm covers, nested, plus layers it must leave alone."""
    torch.manual_seed(0)
    network = nn.ModuleDict(
        {
            "conv": nn.Conv2d(3, 5, 3),
            "inner": nn.Sequential(
                nn.ConvTranspose2d(4, 6, 4), nn.LayerNorm(6), nn.Conv1d(2, 3, 3)
            ),
            "linear": nn.Linear(7, 4),
            "embedding": nn.Embedding(10, 3),
        }
    )
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(3)  # so that no weight starts with spectral norm near 1
    return network


def as_matrix(layer: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    # Torch normalises the weight reshaped to (out, -1); "out" is dim 1 for transposed convs.
    if isinstance(layer, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)
    return weight.reshape(weight.shape[0], -1)


def normalised_layers(network):
    return [network["conv"], network["inner"][0], network["inner"][2], network["linear"]]


def test_clip_weights_bounds_every_parameter_and_keeps_the_small_ones():
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 1))
    before = [p.detach().clone() for p in network.parameters()]
    clip_weights(network, 0.05)
    for old, new in zip(before, network.parameters()):
        assert new.abs().max() <= 0.05
        inside = old.abs() <= 0.05
        assert torch.equal(new[inside], old[inside])
        assert torch.equal(new[~inside], 0.05 * old[~inside].sign())


def test_clip_value_must_be_positive():
    with pytest.raises(ConfigError, match="> 0"):
        clip_weights(nn.Linear(2, 1), 0.0)


def test_spectral_norm_wraps_every_linear_and_conv_layer_once():
    network = mixed_network()
    assert apply_spectral_norm(network) == 4
    assert all(parametrize.is_parametrized(layer, "weight") for layer in normalised_layers(network))
    assert not parametrize.is_parametrized(network["embedding"])
    assert not parametrize.is_parametrized(network["inner"][1])
    assert has_spectral_norm(network) and not has_spectral_norm(mixed_network())
    assert apply_spectral_norm(network) == 0  # idempotent


def test_layer_types_choose_what_is_normalised():
    network = mixed_network()
    assert apply_spectral_norm(network, layer_types=(nn.Embedding,)) == 1
    assert apply_spectral_norm(network) == 4


def test_largest_singular_value_becomes_one_after_power_iterations():
    network = mixed_network()
    originals = {
        name: torch.linalg.svdvals(as_matrix(layer, layer.weight.detach()))[0].item()
        for name, layer in zip("abcd", normalised_layers(network))
    }
    assert all(abs(sigma - 1) > 0.5 for sigma in originals.values())
    apply_spectral_norm(network)
    network.train()
    # Each training forward pass runs one power iteration; a few dozen make it converge.
    for _ in range(30):
        network["conv"](torch.randn(1, 3, 5, 5))
        network["inner"][0](torch.randn(1, 4, 2, 2))
        network["inner"][2](torch.randn(1, 2, 5))
        network["linear"](torch.randn(1, 7))
    for layer in normalised_layers(network):
        sigma = torch.linalg.svdvals(as_matrix(layer, layer.weight.detach()))[0]
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)


def test_state_dict_round_trips_into_a_fresh_normalised_network():
    network = mixed_network()
    apply_spectral_norm(network, n_power_iterations=2)
    network.train()
    for _ in range(3):
        network["linear"](torch.randn(2, 7))
    state = network.state_dict()
    assert "linear.parametrizations.weight.original" in state
    fresh = mixed_network()
    with torch.no_grad():
        for parameter in fresh.parameters():
            parameter.normal_()
    apply_spectral_norm(fresh, n_power_iterations=2)
    fresh.load_state_dict(state)
    network.eval(), fresh.eval()
    x = torch.randn(3, 7)
    assert torch.equal(network["linear"](x), fresh["linear"](x))
    assert torch.equal(network["linear"].weight, fresh["linear"].weight)


def test_old_style_spectral_norm_is_left_alone():
    layer = torch.nn.utils.spectral_norm(nn.Linear(3, 2))
    assert has_spectral_norm(layer)
    assert apply_spectral_norm(nn.Sequential(layer)) == 0


def test_power_iterations_must_be_positive():
    with pytest.raises(ConfigError, match="n_power_iterations"):
        apply_spectral_norm(nn.Linear(2, 1), n_power_iterations=0)
