"""SpectralCollapse and the spectral spread it reads."""

import json

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.models import DCGANDiscriminator
from gan_tricks.monitors import SpectralCollapse, spectral_spread, weight_matrices
from gan_tricks.testing import fit_briefly, tiny_gan_module


def test_spread_of_known_spectra():
    assert spectral_spread(torch.eye(6)) == pytest.approx(1.0)
    rank_one = torch.outer(torch.randn(5), torch.randn(7))
    assert spectral_spread(rank_one) == pytest.approx(0.0, abs=1e-5)
    diagonal = torch.diag(torch.tensor([4.0, 2.0, 1.0, 1.0]))
    assert spectral_spread(diagonal) == pytest.approx((2 + 1 + 1) / 3 / 4)
    assert spectral_spread(diagonal, top=2) == pytest.approx(0.5)


def test_spread_against_svdvals_and_is_scale_free():
    matrix = torch.randn(16, 40)
    values = torch.linalg.svdvals(matrix)
    assert spectral_spread(matrix) == pytest.approx((values[1:8].mean() / values[0]).item())
    assert spectral_spread(5 * matrix) == pytest.approx(spectral_spread(matrix), rel=1e-5)


def test_weight_matrices_reads_every_conv_and_linear_layer():
    network = DCGANDiscriminator(image_size=16, channels=3, width=8)
    matrices = weight_matrices(network)
    convs = [m for m in network.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(matrices) == len(convs)
    first = next(iter(matrices.values()))
    assert first.shape == (convs[0].out_channels, 3 * convs[0].kernel_size[0] ** 2)


def spreads(value):
    return {"spectral_spread/a": value, "spectral_spread/b": 0.6}


def test_collapse_is_relative_to_the_layers_own_highest_and_needs_patience():
    detector = SpectralCollapse(min_ratio=0.5, patience=2, warmup=0)
    assert detector.observe(0, spreads(0.8)) is None
    assert detector.observe(1, {"d_loss": 1.0}) is None  # not a checking step
    assert detector.observe(2, spreads(0.3)) is None  # first fallen check
    alarm = detector.observe(3, spreads(0.35))
    assert "'a'" in alarm.message and alarm.signals == {
        "spectral_spread": 0.35,
        "highest_spread": 0.8,
    }
    # A layer that was always narrow is not collapsing.
    steady = SpectralCollapse(min_ratio=0.5, patience=2, warmup=0)
    assert not any(steady.observe(s, spreads(0.1)) for s in range(10))


def test_state_keeps_each_layers_highest():
    detector = SpectralCollapse(patience=2, warmup=0)
    detector.observe(0, spreads(0.8))
    restored = SpectralCollapse(patience=2, warmup=0)
    restored.load_state_dict(json.loads(json.dumps(detector.state_dict())))
    assert restored.highest == {"a": 0.8, "b": 0.6}
    restored.observe(1, spreads(0.1))
    assert restored.observe(2, spreads(0.1)) is not None


@pytest.mark.parametrize("kwargs", [{"min_ratio": 1.0}, {"every": 0}, {"top": 1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        SpectralCollapse(**kwargs)


def test_a_fit_records_each_layers_spread(tmp_path):
    detector = SpectralCollapse(every=2, warmup=0)
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 6, default_root_dir=tmp_path)
    matrices = weight_matrices(module.discriminator)
    assert set(detector.highest) == {name for name, m in matrices.items() if min(m.shape) >= 2}
    assert len(detector.highest) == len(matrices) - 1  # all but the output layer
    assert all(0 < value <= 1 for value in detector.highest.values())
