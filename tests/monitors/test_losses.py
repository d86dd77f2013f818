"""NonFinite, DiscriminatorOverpowering and LossOscillation: on made-up signals and in fits."""

import math
import random

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import DiscriminatorOverpowering, LossOscillation, NonFinite, read_alarms
from gan_tricks.testing import fit_briefly, tiny_gan_module

HEALTHY = {"d_loss": 1.3, "d_real": 0.3, "d_fake": -0.2, "g_loss": 0.8}


def test_non_finite_fires_on_the_step_a_signal_becomes_nan():
    detector = NonFinite()
    assert detector.observe(0, HEALTHY) is None
    alarm = detector.observe(1, {**HEALTHY, "g_grad_norm": math.inf, "d_loss": math.nan})
    assert alarm.step == 1 and alarm.severity == "error"
    assert alarm.message.startswith("d_loss, g_grad_norm became non-finite at step 1.")
    assert set(alarm.signals) == {"d_loss", "g_grad_norm"}


def test_non_finite_stops_a_fit_in_the_step_its_data_turns_nan(tmp_path):
    points = torch.randn(16 * 8, 2)
    points[16 * 5 + 3] = math.nan  # the sixth batch
    data = DataLoader(TensorDataset(points), batch_size=16)
    module = tiny_gan_module(detectors=[NonFinite()])
    trainer = fit_briefly(module, 8, data=data, default_root_dir=tmp_path)
    (alarm,) = read_alarms(tmp_path)
    assert alarm.step == 6 == trainer.global_step  # stopped right there
    assert "d_loss" in alarm.signals


def test_non_finite_sees_weights_that_turned_nan(tmp_path):
    detector = NonFinite(weights_every=1)
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 2, default_root_dir=tmp_path)
    assert detector.alarms == []
    with torch.no_grad():
        next(module.discriminator.parameters())[0, 0] = math.nan
    signals = detector.measure(module.engine.context, module.signals.floats())
    assert set(signals) == {"generator_weight_norm", "discriminator_weight_norm"}  # its own
    assert math.isnan(signals["discriminator_weight_norm"])
    assert math.isfinite(signals["generator_weight_norm"])


def test_non_finite_checks_the_weights_every_so_many_iterations():
    detector = NonFinite(weights_every=3)
    module = tiny_gan_module()
    ctx = module.engine.context
    measured = []
    for step in range(7):
        ctx.step = step
        measured.append(bool(detector.measure(ctx, {})))
    assert measured == [False, False, True, False, False, True, False]  # after 3 and 6 done
    assert NonFinite(weights_every=0).measure(ctx, {}) == {}


def saturated(d_loss=0.002):
    return {"d_loss": d_loss, "d_real": 7.0, "d_fake": -7.0}


def test_overpowering_needs_a_whole_window_of_a_winning_d():
    detector = DiscriminatorOverpowering(window=50, warmup=0)
    steps = [s for s in range(49) if detector.observe(s, saturated())]
    assert steps == []
    alarm = detector.observe(49, saturated())
    assert alarm.step == 49 and "since step 0" in alarm.message
    assert alarm.signals["p_real"] > 0.99 and alarm.signals["p_fake"] < 0.01
    # One healthy step in the window resets it.
    detector = DiscriminatorOverpowering(window=50, warmup=0)
    signals = [saturated()] * 30 + [HEALTHY] + [saturated()] * 40
    assert not any(detector.observe(s, x) for s, x in enumerate(signals))


def test_overpowering_sees_saturation_through_label_smoothing():
    # Soft targets keep D's loss near 0.5 however well D separates: the outputs still tell.
    detector = DiscriminatorOverpowering(window=20, warmup=0)
    alarms = [detector.observe(s, saturated(d_loss=0.5)) for s in range(20)]
    assert alarms[-1] is not None
    healthy = DiscriminatorOverpowering(window=20, warmup=0)
    assert not any(healthy.observe(s, {**HEALTHY, "d_loss": 0.01}) for s in range(19))


def test_overpowering_fires_when_d_wins_a_real_fit(tmp_path):
    # G barely learns (lr 1e-9) while D learns fast: D separates the two and its loss goes to 0.
    detector = DiscriminatorOverpowering(window=50, warmup=0)
    module = tiny_gan_module(
        g_optimizer=lambda p: torch.optim.SGD(p, lr=1e-9),
        d_optimizer=lambda p: torch.optim.Adam(p, lr=0.01),
        detectors=[detector],
    )
    data = DataLoader(TensorDataset(torch.randn(512, 2) * 0.1 + 3.0), batch_size=64)
    fit_briefly(module, 200, data=data, default_root_dir=tmp_path, max_epochs=-1)
    assert detector.alarms and detector.alarms[0].step < 200
    assert read_alarms(tmp_path)[0].detector == "DiscriminatorOverpowering"


def test_overpowering_and_oscillation_name_the_signals_they_need():
    with pytest.raises(ConfigError, match=r"needs the signals d_loss, d_real, d_fake but got no "
                       r"d_real, d_fake \(given: d_loss\)"):  # fmt: skip
        DiscriminatorOverpowering(warmup=0).observe(0, {"d_loss": 0.1})
    with pytest.raises(ConfigError, match="LossOscillation needs the signals d_loss but got no"):
        LossOscillation().observe(0, {"g_loss": 0.7})
    assert NonFinite().observe(0, {}) is None  # it checks whatever it is given


def test_overpowering_refuses_a_wasserstein_critic(tmp_path):
    with pytest.raises(ConfigError, match="Wasserstein"):
        fit_briefly(
            tiny_gan_module(loss="wasserstein", detectors=[DiscriminatorOverpowering()]),
            1,
            default_root_dir=tmp_path,
        )


def noisy(level, spread, seed=0):
    rng = random.Random(seed)
    return [level + rng.gauss(0, spread) for _ in range(400)]


def test_oscillation_is_quiet_on_a_noisy_but_steady_loss():
    detector = LossOscillation(window=200, warmup=0)
    assert not any(detector.observe(s, {"d_loss": x}) for s, x in enumerate(noisy(1.2, 0.1)))


def test_oscillation_fires_on_slow_large_swings():
    detector = LossOscillation(window=200, warmup=0)
    swings = [1.0 + 0.9 * math.sin(s / 16) for s in range(400)]  # a period of 100 steps
    alarm = next(a for s, x in enumerate(swings) if (a := detector.observe(s, {"d_loss": x})))
    assert alarm.step == 290  # the first full window at 200, then 10 checks 10 steps apart
    assert alarm.signals["d_loss_variation"] > 0.5
    assert alarm.signals["d_loss_low"] < 0.3 and alarm.signals["d_loss_high"] > 1.7


def test_oscillation_needs_patience_checks_in_a_row():
    swings = [1.0 + 0.9 * math.sin(s / 8) for s in range(300)]
    for patience, first in ((1, 100), (3, 120)):  # checks at 100, 110, 120, ...
        detector = LossOscillation(window=100, warmup=0, patience=patience)
        alarms = [a for s, x in enumerate(swings) if (a := detector.observe(s, {"d_loss": x}))]
        assert alarms[0].step == first
    # A steady stretch between two swinging ones resets the count.
    detector = LossOscillation(window=100, warmup=0, patience=3, cooldown=0)
    detector.swinging.extend([True, True])
    detector.d_losses.extend([1.0] * 100)
    assert detector.observe(100, {"d_loss": 1.0}) is None and list(detector.swinging) == [
        True,
        True,
        False,
    ]


def test_oscillation_ignores_isolated_spikes_and_a_steady_drift():
    # A healthy DCGAN's D loss on the digits: a downward drift with brief jumps to 5.
    losses = [1.0 - 0.6 * s / 400 + x for s, x in enumerate(noisy(0.0, 0.05))]
    for s in range(100, 400, 40):
        losses[s : s + 3] = [5.0, 2.0, 1.5]
    detector = LossOscillation(window=200, warmup=0)
    assert not any(detector.observe(s, {"d_loss": x}) for s, x in enumerate(losses))
