"""The detector protocol: warm-up, cooldown, checkpoint state, and where alarms go."""

import json
import logging
from collections import deque

import pytest
import torch
from pytorch_lightning.loggers import WandbLogger
from support.wandb_files import finished_wandb_records

from gan_tricks.errors import ConfigError
from gan_tricks.monitors import ALARMS_FILE, Alarm, Detector, read_alarms
from gan_tricks.testing import fit_briefly, tiny_gan_module


class Threshold(Detector):
    """Fires whenever the loss of the step is above a limit; remembers the last 3 losses."""

    remedy = "lower it."

    def __init__(self, limit=1.0, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit
        self.recent = deque(maxlen=3)

    def check(self, step, signals):
        self.recent.append(signals["d_loss"])
        if signals["d_loss"] > self.limit:
            return f"d_loss is {signals['d_loss']:.2f}.", {"d_loss": signals["d_loss"]}
        return None


def test_observe_respects_warmup_and_cooldown():
    detector = Threshold(warmup=5, cooldown=10)
    fired = [step for step in range(40) if detector.observe(step, {"d_loss": 2.0})]
    assert fired == [5, 15, 25, 35]
    alarm = detector.alarms[0]
    assert alarm.step == 5 and alarm.detector == "Threshold" and alarm.severity == "warning"
    assert alarm.message == "d_loss is 2.00. Try: lower it." and alarm.signals == {"d_loss": 2.0}
    assert detector.observe(100, {"d_loss": 0.5}) is None


def test_state_dict_round_trip_keeps_history_and_cooldown():
    detector = Threshold(warmup=0, cooldown=10)
    for step, loss in enumerate([0.1, 0.2, 3.0, 0.4]):
        detector.observe(step, {"d_loss": loss})
    state = json.loads(json.dumps(detector.state_dict()))  # plain data, as in a checkpoint
    restored = Threshold(warmup=0, cooldown=10)
    restored.load_state_dict(state)
    assert list(restored.recent) == [0.2, 3.0, 0.4]
    assert restored.alarms == detector.alarms
    assert restored.observe(5, {"d_loss": 5.0}) is None  # still cooling down from step 2
    assert restored.observe(12, {"d_loss": 5.0}) is not None


@pytest.mark.parametrize("kwargs", [{"action": "explode"}, {"warmup": -1}, {"cooldown": -2}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        Threshold(**kwargs)


def test_alarms_reach_the_console_the_run_folder_and_wandb(tmp_path, caplog):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="gan-tricks-test")
    detector = Threshold(limit=-1e9, warmup=2, cooldown=3)  # every step after the warm-up
    with caplog.at_level(logging.WARNING, logger="gan_tricks.monitors"):
        module = tiny_gan_module(detectors=[detector])
        fit_briefly(module, 8, logger=logger, default_root_dir=tmp_path)
    logger.experiment.finish()
    steps = [alarm.step for alarm in detector.alarms]
    assert steps == [2, 5, 8]  # global_step after each iteration: 1 .. 8
    assert read_alarms(tmp_path) == detector.alarms
    lines = (tmp_path / ALARMS_FILE).read_text().splitlines()
    assert set(json.loads(lines[0])) == {
        "step",
        "detector",
        "severity",
        "message",
        "signals",
        "remedy",
        "action",
    }
    console = [r.getMessage() for r in caplog.records if r.name == "gan_tricks.monitors"]
    assert console[0].startswith("gan-tricks alarm at step 2: Threshold (warning): d_loss is")
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    alerts = [record.alert for record in finished_wandb_records(run_file, "alert")]
    assert [a.title for a in alerts] == [
        "Threshold at step 2",
        "Threshold at step 5",
        "Threshold at step 8",
    ]
    assert all(a.level == "WARN" and "Try: lower it." in a.text for a in alerts)
    summary = {}
    for record in finished_wandb_records(run_file, "summary"):
        for update in record.summary.update:
            summary[update.key or "/".join(update.nested_key)] = json.loads(update.value_json)
    assert summary["alarm_count"] == 3
    assert [a["step"] for a in summary["alarms"]] == [2, 5, 8]  # every alarm, not the last
    assert {a["detector"] for a in summary["alarms"]} == {"Threshold"}
    series = [
        item
        for record in finished_wandb_records(run_file, "history")
        for item in record.history.item
        if (item.key or "/".join(item.nested_key)) == "alarms/Threshold"
    ]
    assert len(series) == 3


def test_action_stop_ends_the_fit_after_the_alarm(tmp_path):
    detector = Threshold(limit=-1e9, warmup=3, action="stop")
    trainer = fit_briefly(tiny_gan_module(detectors=[detector]), 50, default_root_dir=tmp_path)
    assert trainer.global_step == 3
    assert [a.step for a in read_alarms(tmp_path)] == [3]


def test_a_checkpoint_carries_the_detectors_state(tmp_path):
    detector = Threshold(limit=-1e9, warmup=2, cooldown=100)
    trainer = fit_briefly(tiny_gan_module(detectors=[detector]), 4, default_root_dir=tmp_path)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    resumed = Threshold(limit=-1e9, warmup=2, cooldown=100)
    module = tiny_gan_module(detectors=[resumed])
    fit_briefly(module, 6, ckpt_path=tmp_path / "a.ckpt", default_root_dir=tmp_path)
    assert [a.step for a in resumed.alarms] == [2]  # restored, and step 5-6 still cooling down
    assert len(resumed.recent) == 3


def test_alarm_json_round_trip():
    alarm = Alarm(7, "X", "error", "m", {"a": float("nan")}, "r")
    again = Alarm(**json.loads(alarm.to_json()))
    assert again.step == 7 and again.signals["a"] != again.signals["a"]  # NaN survives
    assert torch.isnan(torch.tensor(again.signals["a"]))


class NeedsLogits(Threshold):
    needs = ("d_loss", "d_real", "d_fake")


def test_missing_signals_are_named_in_one_sentence(one_sentence):
    detector = NeedsLogits(warmup=0)
    with pytest.raises(ConfigError) as error:
        detector.observe(0, {"d_loss": 0.3, "g_loss": 0.7})
    message = str(error.value)
    one_sentence(message)
    assert message.startswith(
        "NeedsLogits needs the signals d_loss, d_real, d_fake but got no d_real, d_fake "
        "(given: d_loss, g_loss)"
    )
    assert detector.observe(1, {"d_loss": 0.3, "d_real": 0.2, "d_fake": -0.1}) is None


def test_a_report_without_the_needed_signals_is_refused(tiny_engine, one_sentence):
    engine = tiny_engine([NeedsLogits(warmup=0)])
    with pytest.raises(ConfigError, match="needs the signals d_loss, d_real, d_fake") as error:
        engine.report({"d_loss": 0.3, "g_loss": 0.7}, step=1)
    one_sentence(str(error.value))


# -log(0.9) - log(1 - 0.1): the loss of probabilities 0.9 and 0.1; logits 0.9 and 0.1 would
# give softplus(-0.9) + softplus(0.1) = 1.085.
PROBABILITIES = {"d_loss": 0.2107, "d_real": 0.9, "d_fake": 0.1, "g_loss": 2.3}
LOGITS = {"d_loss": 1.085, "d_real": 0.9, "d_fake": 0.1, "g_loss": 0.64}


def test_probabilities_reported_as_logits_are_refused_after_three_reports(
    tiny_engine, one_sentence
):
    engine = tiny_engine([Threshold(limit=1e9)])  # loss: nonsaturating
    engine.report(PROBABILITIES, step=1)
    engine.report(PROBABILITIES, step=2)
    with pytest.raises(ConfigError, match="look like D's probabilities, not its logits") as error:
        engine.report(PROBABILITIES, step=3)
    one_sentence(str(error.value))


def test_logits_and_other_losses_pass_the_logit_check(tiny_engine):
    engine = tiny_engine([Threshold(limit=1e9)])
    for step in range(1, 10):
        assert engine.report(LOGITS, step=step) == []
    # A run of probability-like reports broken by one of logits starts counting again.
    for step, signals in enumerate([PROBABILITIES, PROBABILITIES, LOGITS, PROBABILITIES], 10):
        engine.report(signals, step=step)
    # Hinge and Wasserstein losses read no sigmoid: nothing to tell apart.
    for loss in ("hinge", "wasserstein"):
        engine = tiny_engine([Threshold(limit=1e9)], loss=loss)
        for step in range(1, 6):
            engine.report(PROBABILITIES, step=step)
