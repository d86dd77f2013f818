"""NoiseInjection: Gaussian noise of std sigma in train mode, none in eval mode."""

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.layers.noise import NoiseInjection


def test_train_mode_adds_noise_of_std_sigma():
    layer = NoiseInjection(0.3).train()
    x = torch.full((100_000,), -2.0)
    torch.manual_seed(0)
    noise = layer(x) - x
    assert noise.mean().item() == pytest.approx(0.0, abs=5e-3)
    assert noise.std().item() == pytest.approx(0.3, abs=3e-3)


def test_eval_mode_is_the_identity():
    layer = NoiseInjection(0.3).eval()
    x = torch.randn(10)
    assert layer(x) is x


def test_no_state_and_sigma_can_be_annealed_by_assignment():
    layer = NoiseInjection(0.3)
    assert layer.state_dict() == {}
    assert "sigma=0.3" in repr(layer)
    layer.sigma = 0.0
    x = torch.randn(10)
    assert torch.equal(layer.train()(x), x)


def test_negative_sigma_is_a_config_error():
    with pytest.raises(ConfigError, match="sigma must be at least 0"):
        NoiseInjection(-1.0)
