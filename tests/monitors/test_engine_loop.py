"""Detectors in a plain GANEngine loop, without Lightning: their actions, ``engine.report`` for
a loop with its own step, and their state in the engine's checkpoint."""

import copy
import io
import logging
import math

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import (
    Detector,
    DiscriminatorOverfitting,
    DiscriminatorOverpowering,
    GeneratorFoolingWithGarbage,
    GradientPathology,
    LossOscillation,
    ModeCollapse,
    NonFinite,
    SpectralCollapse,
    sign_mean,
)


class FiresAt(Detector):
    """Fires at the given steps and nowhere else."""

    def __init__(self, steps, **kwargs):
        super().__init__(warmup=0, cooldown=0, **kwargs)
        self.steps = set(steps)

    def check(self, step, signals):
        return ("it is time.", {}) if step in self.steps else None


def batches(n, size=16, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(size, 2, generator=generator) for _ in range(n)]


def test_stop_sets_should_stop_after_the_alarms_iteration(tiny_engine):
    detector = FiresAt([3], action="stop")
    engine = tiny_engine([detector])
    seen = []
    engine.alarm_handlers.append(seen.append)
    for real in batches(10):
        engine.step(real)
        if engine.should_stop:
            break
    assert engine.iteration == 3 and engine.should_stop
    assert [(a.step, a.action) for a in seen] == [(3, "stop")]
    assert seen == detector.alarms


def test_rollback_restores_the_networks_and_optimizers_of_a_healthy_step(tiny_engine):
    detector = NonFinite(action="rollback", rollback_every=2, weights_every=1)
    engine = tiny_engine([detector])
    data = batches(8)
    for real in data[:5]:
        engine.step(real)
    assert [step for step, _ in detector.snapshots.kept] == [2, 4]
    healthy = copy.deepcopy(detector.snapshots.kept[0][1])  # the older one: step 2
    with torch.no_grad():
        next(engine.discriminator.parameters())[0, 0] = math.nan  # D's weights break
    signals = engine.step(data[5])
    assert math.isnan(signals.floats()["d_loss"])
    (alarm,) = detector.alarms
    assert alarm.step == 6 and "discriminator_weight_norm" in alarm.signals
    assert alarm.action == (
        "rollback: restored the weights and optimizer states of step 2 "
        "(2 non-finite updates skipped so far)"  # the NaN D step and G step
    )
    restored = engine.networks.state_dict()
    assert set(restored) == set(healthy["module"])
    for name, value in healthy["module"].items():
        assert torch.isfinite(restored[name]).all() and torch.equal(restored[name], value), name
    for optimizer, saved in zip(
        (engine.g_optimizer, engine.d_optimizer), healthy["optimizers"], strict=True
    ):
        state = optimizer.state_dict()["state"]
        assert state.keys() == saved["state"].keys()
        for index, moments in saved["state"].items():
            for key, value in moments.items():
                assert torch.equal(state[index][key], value), (index, key)
    after = engine.step(data[6])  # training goes on from the healthy state
    assert all(math.isfinite(v) for v in after.floats().values())


def test_remediate_lower_d_lr_halves_the_engines_d_learning_rate(tiny_engine):
    detector = FiresAt([2], action="remediate", remedy="lower_d_lr")
    engine = tiny_engine([detector], lr=2e-4)
    for real in batches(4):
        engine.step(real)
    assert engine.d_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert engine.g_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    (alarm,) = detector.alarms
    assert alarm.action == "remediate: halved D's learning rate (0.0002 -> 0.0001)"


def test_report_in_a_loop_of_ones_own_returns_the_alarms_and_acts(tiny_engine):
    detector = DiscriminatorOverpowering(window=5, warmup=0, action="stop")
    engine = tiny_engine([detector, NonFinite()])
    handled = []
    engine.alarm_handlers.append(handled.append)
    won = {"d_loss": 0.001, "d_real": 7.0, "d_fake": -7.0, "g_loss": 8.0}
    returned = [engine.report(won, step=step) for step in range(10, 15)]
    assert returned[:4] == [[], [], [], []]
    (alarm,) = returned[4]
    assert alarm.step == 14 and alarm.detector == "DiscriminatorOverpowering"
    assert alarm.action == "stop" and engine.should_stop and engine.iteration == 14
    assert handled == [alarm] == detector.alarms


def test_report_without_a_step_counts_on_from_the_last_one(tiny_engine):
    detector = FiresAt([3, 4], action="remediate", remedy="lower_lrs")
    engine = tiny_engine([detector], lr=4e-4)
    steps = [alarm.step for _ in range(4) for alarm in engine.report({"d_loss": 1.0})]
    assert steps == [3, 4] and engine.iteration == 4
    assert engine.d_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


class Collapsed(nn.Module):
    def forward(self, z):
        return torch.zeros(len(z), 2) + 1e-4 * z[:, :2]


def test_report_with_the_batches_feeds_the_detectors_that_read_samples(tiny_engine):
    # A hand-written loop's own adversarial step, G collapsed onto one point.
    collapse = ModeCollapse(every=2, patience=2, warmup=0)
    fooling = GeneratorFoolingWithGarbage(window=20, every=2, warmup=0)
    engine = tiny_engine([collapse, fooling])
    generator, discriminator = Collapsed(), engine.discriminator
    alarms = []
    for step, real in enumerate(batches(6), start=1):
        with torch.no_grad():  # (the loop's own losses and optimizer steps left out)
            fake = generator(torch.randn(len(real), 2))
            real_logits, fake_logits = discriminator(real), discriminator(fake)
        signals = {
            "d_loss": 1.38,
            "g_loss": 0.7,
            "d_real": float(real_logits.mean()),
            "d_fake": float(fake_logits.mean()),
        }
        alarms += engine.report(signals, step=step, real=real, fake=fake)
    assert [(a.step, a.detector) for a in alarms] == [(4, "ModeCollapse")]  # checks at 2, 4
    assert alarms[0].signals["diversity_ratio"] < 0.01
    assert len(fooling.gaps) == 3 and all(gap > 0 for gap in fooling.gaps)


def test_a_report_without_the_batches_warns_once_and_checks_nothing(tiny_engine, caplog):
    detector = ModeCollapse(every=2, patience=1, warmup=0)
    engine = tiny_engine([detector])
    with caplog.at_level(logging.WARNING, logger="gan_tricks.monitors"):
        for step in range(1, 7):
            assert engine.report({"d_loss": 1.0}, step=step) == []
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "gan_tricks.monitors"]
    assert warning.startswith("ModeCollapse got no samples at step 2: pass real= and fake=")
    # Its own values, measured by the loop, are checked (no warning for them).
    collapsed = {"diversity_ratio": 0.05, "duplicate_rate": 0.9}
    (alarm,) = engine.report(collapsed, step=8)
    assert alarm.signals == collapsed


def test_overfitting_without_heldout_data_says_what_it_needs(tiny_engine, one_sentence):
    engine = tiny_engine([DiscriminatorOverfitting()])
    with pytest.raises(ConfigError, match="needs held-out real data") as error:
        engine.step(batches(1)[0])
    one_sentence(str(error.value))
    # A loop that measures r_train and r_heldout itself reports them: no data is read.
    detector = DiscriminatorOverfitting(warmup=0, patience=1)
    engine = tiny_engine([detector])
    logits = torch.tensor([1.0, 2.0, 3.0, -1.0])
    (alarm,) = engine.report({"r_train": sign_mean(logits), "r_heldout": -0.5}, step=1)
    assert alarm.signals == {"r_train": 0.5, "r_heldout": -0.5}


class HeldOut:
    """Data with a held-out set, as the engine's ``data`` (what Digits and Toy2D offer)."""

    sample_shape = (2,)
    kind = "points"

    def heldout_samples(self, n, seed=0):
        return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + 5.0


def test_overfitting_reads_the_engines_heldout_data_through_judge(tiny_engine):
    readings = []

    class Recording(DiscriminatorOverfitting):
        def check(self, step, signals):
            if "r_train" in signals:
                readings.append((step, signals["r_train"], signals["r_heldout"]))
            return super().check(step, signals)

    engine = tiny_engine([Recording(every=2, warmup=0, samples=16)], data=HeldOut())
    for real in batches(5):
        engine.step(real)
    assert [step for step, _, _ in readings] == [2, 4]
    discriminator = engine.discriminator.eval()
    heldout = HeldOut().heldout_samples(16)
    expected = sign_mean(discriminator(heldout).flatten())
    assert readings[-1][2] == pytest.approx(expected)


def run_all(engine, data):
    for real in data:
        engine.step(real)


def detectors():
    return [
        NonFinite(action="rollback", rollback_every=2),
        DiscriminatorOverpowering(window=5, warmup=0),
        LossOscillation(window=30, smooth=5, warmup=0),
        ModeCollapse(every=2, warmup=0),
        GeneratorFoolingWithGarbage(window=20, every=2, warmup=0),
        GradientPathology(warmup=0),
        SpectralCollapse(every=2, warmup=0),
        FiresAt([3]),
    ]


def test_detector_state_round_trips_through_the_engines_state_dict(tiny_engine):
    engine = tiny_engine(detectors())
    run_all(engine, batches(6))
    buffer = io.BytesIO()
    torch.save(engine.state_dict(), buffer)  # as a checkpoint file, read back weights-only
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed = tiny_engine(detectors(), seed=1)
    resumed.load_state_dict(state)
    for before, after in zip(engine.detectors, resumed.detectors, strict=True):
        assert repr(after.state_dict()) == repr(before.state_dict()), type(before).__name__
    assert [a.step for a in resumed.detectors[-1].alarms] == [3]
    assert [step for step, _ in resumed.detectors[0].snapshots.kept] == [4, 6]
    # Both go on identically from there.
    more = batches(3, seed=2)
    run_all(engine, more)
    run_all(resumed, more)
    for before, after in zip(engine.detectors, resumed.detectors, strict=True):
        assert repr(after.history_state()) == repr(before.history_state()), type(before).__name__


def test_a_checkpoint_with_a_detector_the_run_lacks_is_refused(tiny_engine):
    engine = tiny_engine([LossOscillation(), FiresAt([])])
    state = engine.state_dict(include_networks=False)
    with pytest.raises(ConfigError, match="detector FiresAt"):
        tiny_engine([LossOscillation()]).load_state_dict(state)


NEEDS = {
    NonFinite: (),
    DiscriminatorOverpowering: ("d_loss", "d_real", "d_fake"),
    LossOscillation: ("d_loss",),
    ModeCollapse: (),
    GeneratorFoolingWithGarbage: ("g_loss",),
    GradientPathology: ("g_grad_norm", "d_grad_norm"),
    DiscriminatorOverfitting: (),
    SpectralCollapse: (),
}


@pytest.mark.parametrize("kind", NEEDS, ids=lambda cls: cls.__name__)
def test_each_detector_names_the_signals_it_needs(kind, one_sentence):
    needs = NEEDS[kind]
    assert kind.needs == needs
    if needs:
        with pytest.raises(ConfigError) as error:
            kind(warmup=0).observe(1, {"d_steps": 1.0})
        message = str(error.value)
        one_sentence(message)
        assert f"needs the signals {', '.join(needs)} but got no {', '.join(needs)}" in message
    assert kind(warmup=0).observe(1, {name: 0.5 for name in needs}) is None
