"""GeneratorFoolingWithGarbage and the moment gap it reads."""

import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import GeneratorFoolingWithGarbage, moment_gap
from gan_tricks.testing import fit_briefly, tiny_gan_module


def test_moment_gap_of_known_shifts_and_scales():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(20_000, 4, generator=generator)
    same = torch.randn(20_000, 4, generator=generator)
    assert moment_gap(same, real) < 0.03
    assert moment_gap(same + 0.5, real) == pytest.approx(0.5, abs=0.03)
    assert moment_gap(2 * same, real) == pytest.approx(1.0, abs=0.03)
    scaled = moment_gap(10 * (same + 0.5), 10 * real)  # the same gap at any scale
    assert scaled == pytest.approx(moment_gap(same + 0.5, real), rel=1e-5)


def run(detector, g_losses, gaps, every=10):
    alarms = []
    for step, g_loss in enumerate(g_losses):
        signals = {"g_loss": g_loss, "d_loss": 1.0 + step / 1000}
        if step % every == 0:
            signals["moment_gap"] = gaps[step // every]
        alarm = detector.observe(step, signals)
        if alarm:
            alarms.append(alarm)
    return alarms


def test_falling_g_loss_with_no_better_samples_is_flagged():
    detector = GeneratorFoolingWithGarbage(window=200, warmup=0)
    g_losses = [2.0 - 1.5 * step / 400 for step in range(400)]
    alarms = run(detector, g_losses, gaps=[1.5] * 40)
    assert alarms and alarms[0].step == 199
    assert alarms[0].signals["g_loss_change"] == pytest.approx(-1.5 * 199 / 400, rel=1e-6)
    assert "D's loss rose" in alarms[0].message


def test_falling_g_loss_with_improving_samples_is_healthy():
    detector = GeneratorFoolingWithGarbage(window=200, warmup=0)
    g_losses = [2.0 - 1.5 * step / 400 for step in range(400)]
    gaps = [1.0 - 0.9 * index / 40 for index in range(40)]
    assert run(detector, g_losses, gaps) == []


def test_falling_g_loss_with_samples_already_close_is_healthy():
    # A healthy DCGAN on the digits: G's loss falls in D's sawtooth, the gap stays near 0.3.
    detector = GeneratorFoolingWithGarbage(window=200, warmup=0)
    g_losses = [2.0 - 1.5 * step / 400 for step in range(400)]
    assert run(detector, g_losses, gaps=[0.3] * 40) == []


def test_a_steady_g_loss_is_healthy_whatever_the_gap():
    detector = GeneratorFoolingWithGarbage(window=200, warmup=0)
    assert run(detector, [0.7] * 400, gaps=[0.8 + 0.01 * i for i in range(40)]) == []


def fooled_run(detector, margin, gap, steps=400, every=10):
    """A steady G loss, D's logit on reals minus fakes ``margin``, and a moment gap: a number,
    or a function of the step."""
    alarms = []
    for step in range(steps):
        signals = {"g_loss": 0.65, "d_loss": 1.4, "d_real": 0.06, "d_fake": 0.06 - margin}
        if step % every == 0:
            signals["moment_gap"] = gap(step) if callable(gap) else gap
        if alarm := detector.observe(step, signals):
            alarms.append(alarm)
    return alarms


def test_a_fooled_d_with_far_samples_is_flagged_though_g_loss_is_steady():
    # The failure zoo's weak D: G fooled it in the first 100 steps, its loss has nothing
    # left to fall, D rates fakes a bit above reals, and the samples are far off.
    alarms = fooled_run(GeneratorFoolingWithGarbage(window=200, warmup=0), -0.02, 2.5)
    assert alarms and alarms[0].step == 199
    assert alarms[0].message.startswith("D rates G's samples as real as the data")
    assert alarms[0].signals["d_logit_margin"] == pytest.approx(-0.02)


@pytest.mark.parametrize(("margin", "gap"), [(-0.02, 0.3), (1.5, 2.5)])
def test_fooled_needs_both_far_samples_and_a_fooled_d(margin, gap):
    assert fooled_run(GeneratorFoolingWithGarbage(window=200, warmup=0), margin, gap) == []


@pytest.mark.parametrize("kwargs", [{"window": 5}, {"min_drop": 0}, {"every": 0}, {"max_gap": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        GeneratorFoolingWithGarbage(**kwargs)


def test_a_fit_measures_the_moment_gap(tmp_path):
    detector = GeneratorFoolingWithGarbage(window=20, every=2, warmup=0)
    fit_briefly(tiny_gan_module(detectors=[detector]), 10, default_root_dir=tmp_path)
    assert len(detector.gaps) == 5 and all(gap > 0 for gap in detector.gaps)
    assert len(detector.g_losses) == 10


def test_a_transient_excursion_does_not_hide_samples_that_stay_far():
    # The zoo's weak D, seed 2: G's samples fly out to a gap of 546 and come back to 4.3,
    # where they stay. Over the whole window the gap "shrank"; its last quarter is flat.
    detector = GeneratorFoolingWithGarbage(window=200, warmup=0)

    def excursion(step):
        return 546.0 if 40 <= step < 100 else 4.3

    alarms = fooled_run(detector, -0.03, excursion, steps=200)
    assert [alarm.step for alarm in alarms] == [199]


def test_samples_sweeping_out_and_back_are_flagged_at_the_windows_end():
    # The zoo's weak D, seed 1: G's batch sweeps out to a gap of 600 and back to 3 every
    # 280 steps; a slope over any part of the window reads half of each sweep as progress.
    detector = GeneratorFoolingWithGarbage(window=500, warmup=0)

    def sweeps(step):
        return 3.0 + 300 * (1 - math.cos(2 * math.pi * step / 280))

    alarms = fooled_run(detector, -0.14, sweeps, steps=500)
    assert [alarm.step for alarm in alarms] == [499]
