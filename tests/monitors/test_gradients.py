"""GradientPathology and the per-layer gradient norms it reads."""

import math

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import GradientPathology, layer_gradient_norms
from gan_tricks.testing import fit_briefly, tiny_gan_module

HEALTHY = {"g_grad_norm": 1.0, "d_grad_norm": 2.0, "g_grad_max_layer": 0.8, "d_grad_max_layer": 1.5}


def test_layer_gradient_norms_match_each_parameters_grad():
    network = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    network(torch.randn(8, 3)).sum().backward()
    network[2].bias.grad = None  # a parameter without a gradient is left out
    norms = layer_gradient_norms(network)
    assert set(norms) == {"0.weight", "0.bias", "2.weight"}
    assert norms["0.weight"] == pytest.approx(network[0].weight.grad.norm().item())


def test_exploding_needs_patience_steps_in_a_row():
    detector = GradientPathology(explode_patience=10, warmup=0)
    exploding = {**HEALTHY, "d_grad_norm": 5000.0, "d_grad_max_layer": 4000.0}
    signals = [exploding] * 9 + [HEALTHY] + [exploding] * 9
    assert not any(detector.observe(s, x) for s, x in enumerate(signals))
    alarm = detector.observe(19, exploding)
    assert alarm.message.startswith("D's gradients are exploding for 10 steps (since step 10)")
    assert alarm.signals["d_grad_max_layer"] == 4000.0


def test_the_folklores_100_is_not_exploding_by_default():
    # A healthy DCGAN's first conv on the digits reaches 850 (see the class's doc).
    detector = GradientPathology(warmup=0)
    busy = {**HEALTHY, "d_grad_norm": 900.0, "d_grad_max_layer": 850.0}
    assert not any(detector.observe(s, busy) for s in range(50))
    assert GradientPathology(exploding_above=100, warmup=0, explode_patience=1).observe(0, busy)


def test_a_saturated_sigmoid_under_the_minimax_loss_is_a_vanishing_gradient():
    saturated = {**HEALTHY, "d_fake": -8.0}  # D(fake) = 0.0003; G's norm itself looks fine
    detector = GradientPathology(patience=5, warmup=0, loss="minimax")
    alarms = [detector.observe(s, saturated) for s in range(5)]
    assert alarms[-1].message.startswith("G's gradients are vanishing for 5 steps")
    assert "D's sigmoid is saturated" in alarms[-1].message
    assert alarms[-1].signals["p_fake"] == pytest.approx(1 / (1 + math.exp(8)))
    # The nonsaturating loss's gradient does not pass through that sigmoid's flat end.
    detector = GradientPathology(patience=5, warmup=0, loss="nonsaturating")
    assert not any(detector.observe(s, saturated) for s in range(20))


def test_the_loss_is_read_from_the_engine(tmp_path):
    detector = GradientPathology()
    fit_briefly(tiny_gan_module(loss="minimax", detectors=[detector]), 1, default_root_dir=tmp_path)
    assert detector.loss == "minimax"


def test_vanishing_names_the_network():
    detector = GradientPathology(patience=5, warmup=0)
    vanishing = {**HEALTHY, "g_grad_norm": 1e-9, "g_grad_max_layer": 1e-9}
    alarms = [detector.observe(s, vanishing) for s in range(5)]
    assert alarms[-1].message.startswith("G's gradients are vanishing")
    assert alarms[-1].signals == {"g_grad_norm": 1e-9}


@pytest.mark.parametrize(
    "kwargs", [{"exploding_above": 1e-9}, {"patience": 0}, {"explode_patience": 0}]
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        GradientPathology(**kwargs)


def test_an_exploding_learning_rate_is_caught_in_a_fit(tmp_path):
    # A quadratic loss grows with D's outputs, which a huge SGD step sends flying.
    detector = GradientPathology(warmup=0)
    module = tiny_gan_module(
        loss="least_squares",
        d_optimizer=lambda p: torch.optim.SGD(p, lr=10.0),
        detectors=[detector],
    )
    fit_briefly(module, 20, default_root_dir=tmp_path, max_epochs=-1)
    # D's weights fly off in its first step, and G's gradients through it: from step 2 on
    # they are over 1,000, then NaN, and three such steps end at step 4.
    (alarm,) = detector.alarms
    assert alarm.step == 4 and alarm.message.startswith("G's gradients are exploding")
    assert "largest in net." in alarm.message and alarm.remedy.startswith("lower the learning")


def test_a_healthy_fit_raises_nothing(tmp_path):
    detector = GradientPathology(patience=5, warmup=0)
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 60, default_root_dir=tmp_path, max_epochs=-1)
    assert detector.alarms == []
