"""ModeCollapse and the diversity signals it reads."""

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import ModeCollapse, diversity_signals
from gan_tricks.testing import fit_briefly, tiny_gan_module


def test_diversity_of_real_against_itself_and_of_a_repeated_sample():
    real = torch.randn(256, 2)
    same = diversity_signals(torch.randn(256, 2), real)
    assert same["diversity_ratio"] == pytest.approx(1.0, abs=0.1)
    assert same["duplicate_rate"] < 0.05
    repeated = diversity_signals(torch.ones(256, 2) + 1e-4 * torch.randn(256, 2), real)
    assert repeated["diversity_ratio"] < 0.01 and repeated["duplicate_rate"] == 1.0


def test_diversity_ratio_scales_with_the_spread():
    real = torch.randn(512, 5)
    half = diversity_signals(0.5 * torch.randn(512, 5), real)
    assert half["diversity_ratio"] == pytest.approx(0.5, abs=0.05)


def test_images_are_compared_flattened():
    real = torch.rand(32, 3, 8, 8)
    signals = diversity_signals(real.clone(), real)
    assert signals["diversity_ratio"] == pytest.approx(1.0)


def test_collapse_needs_patience_checks():
    detector = ModeCollapse(patience=3, warmup=0)
    collapsed = {"diversity_ratio": 0.1, "duplicate_rate": 0.9}
    assert detector.observe(0, collapsed) is None
    assert detector.observe(1, {"d_loss": 1.0}) is None  # not a checking step: no change
    assert detector.observe(2, collapsed) is None
    alarm = detector.observe(3, collapsed)
    assert alarm.severity == "error" and alarm.signals == collapsed


@pytest.mark.parametrize("kwargs", [{"min_ratio": 1.5}, {"every": 0}, {"max_duplicates": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        ModeCollapse(**kwargs)


class ConstantGenerator(nn.Module):
    """Every z maps to (almost) the same point: a G that has collapsed completely."""

    def __init__(self):
        super().__init__()
        self.point = nn.Parameter(torch.zeros(2))
        self.scale = nn.Parameter(torch.tensor(1e-4))

    def forward(self, z):
        return self.point + self.scale * z[:, :2]


def test_a_collapsed_generator_is_caught_in_a_fit(tmp_path):
    detector = ModeCollapse(every=2, patience=3, warmup=0)
    module = tiny_gan_module(generator=ConstantGenerator(), detectors=[detector])
    fit_briefly(module, 20, default_root_dir=tmp_path, max_epochs=-1)
    assert detector.alarms and detector.alarms[0].step == 6  # checks at 2, 4, 6


def test_a_generator_that_matches_the_data_is_not_flagged(tmp_path):
    # The test data is standard-normal points: G(z) = z draws from the same distribution.
    identity = nn.Linear(2, 2)
    with torch.no_grad():
        identity.weight.copy_(torch.eye(2))
        identity.bias.zero_()
    detector = ModeCollapse(every=2, patience=3, warmup=0)
    module = tiny_gan_module(
        generator=identity,
        g_optimizer=lambda p: torch.optim.SGD(p, lr=1e-9),
        detectors=[detector],
    )
    fit_briefly(module, 20, default_root_dir=tmp_path, max_epochs=-1)
    assert detector.alarms == []
