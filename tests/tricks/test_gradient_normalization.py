"""Gradient normalization (GN-GAN): the formula by hand on a linear D, bounded logits in a
fit, G training through it, and the checks that refuse what cannot work."""

import pytest
import torch
from torch import nn

from gan_tricks.engine import Networks, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent, get_loss, gradient_normalized
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks import GradientNormalization, WeightClipping


def linear(weights: list[float], bias: float = 0.5) -> nn.Linear:
    layer = nn.Linear(len(weights), 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        layer.bias.fill_(bias)
    return layer


def test_the_formula_by_hand_on_a_linear_d():
    d = linear([3.0, -4.0])  # ||grad f|| = 5 everywhere
    x = torch.tensor([[1.0, 1.0], [0.0, 2.0], [2.0, 0.0]])
    f = x @ torch.tensor([3.0, -4.0]) + 0.5  # -0.5, -7.5, 6.5
    expected = f / (5.0 + f.abs())
    assert torch.allclose(gradient_normalized(d, x).reshape(-1), expected)
    # Under no_grad: the same values, detached (detectors measure D this way).
    with torch.no_grad():
        measured = gradient_normalized(d, x)
    assert not measured.requires_grad and torch.allclose(measured.reshape(-1), expected)


def test_each_column_of_several_discriminators_is_normalized_by_its_own_gradient():
    d = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[3.0, 4.0], [0.0, 1.0]]))
    x = torch.tensor([[1.0, 1.0]])
    out = gradient_normalized(d, x)
    assert torch.allclose(out, torch.tensor([[7.0 / (5.0 + 7.0), 1.0 / (1.0 + 1.0)]]))


def test_the_trick_keeps_ds_class_and_keys_bounds_its_logits_and_g_trains_through_it():
    module = tiny_gan_module(tricks=[GradientNormalization()])
    d = module.engine.discriminator
    keys = set(d.state_dict())
    fit_briefly(module, 4, log_every_n_steps=1)
    assert set(d.state_dict()) == keys
    x = torch.randn(64, 2) * 10
    assert d(x).abs().max() < 1.0
    signals = module.signals
    assert abs(float(signals.d_real)) < 1 and abs(float(signals.d_fake)) < 1
    # G's gradient passes through the normalized D (fakes keep their graph).
    g = module.engine.generator
    g.zero_grad()
    d(g(torch.randn(8, 2))).sum().backward()
    assert all(p.grad is not None for p in g.parameters())
    assert sum(p.grad.abs().sum() for p in g.parameters()) > 0


def context(discriminator: nn.Module, compiled: bool = False) -> StepContext:
    return StepContext(
        networks=Networks(nn.Identity(), discriminator),
        latent=Latent(dim=2),
        loss=get_loss("nonsaturating"),
        compiled=compiled,
    )


def test_compile_batchnorm_and_weight_clipping_are_refused_in_one_sentence():
    trick = GradientNormalization()
    with pytest.raises(ConfigError, match="torch.compile"):
        trick.check_compatibility(context(linear([1.0]), compiled=True), [])
    with pytest.raises(ConfigError, match="BatchNorm"):
        trick.check_compatibility(context(nn.Sequential(nn.Linear(1, 2), nn.BatchNorm1d(2))), [])
    d = linear([1.0])
    trick.configure_networks(Networks(nn.Identity(), d))
    with pytest.raises(ConfigError, match="WeightClipping and GradientNormalization"):
        WeightClipping().check_compatibility(context(d), [trick])
