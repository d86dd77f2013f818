"""What detectors do about an alarm: stop, remediate with a named remedy, roll back."""

import copy

import pytest
import pytorch_lightning as pl
import torch

from gan_tricks import monitors
from gan_tricks.errors import ConfigError
from gan_tricks.monitors import Detector, read_alarms
from gan_tricks.monitors.actions import REMEDIES, lower_d_lr, lower_lrs
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks import InstanceNoise, LabelSmoothing, SpectralNorm


class FiresAt(Detector):
    """Fires at the given steps and nowhere else."""

    def __init__(self, steps, **kwargs):
        super().__init__(warmup=0, cooldown=0, **kwargs)
        self.steps = set(steps)

    def check(self, step, signals):
        return ("it is time.", {}) if step in self.steps else None


def test_remediate_lower_d_lr_halves_ds_rate_and_says_so(tmp_path):
    initial = 2e-4
    detector = FiresAt([3], action="remediate", remedy="lower_d_lr")
    module = tiny_gan_module(
        g_optimizer=lambda p: torch.optim.Adam(p, lr=initial),
        d_optimizer=lambda p: torch.optim.Adam(p, lr=initial),
        detectors=[detector],
    )
    trainer = fit_briefly(module, 5, default_root_dir=tmp_path)
    g_optimizer, d_optimizer = trainer.optimizers
    assert d_optimizer.param_groups[0]["lr"] == pytest.approx(initial / 2)
    assert g_optimizer.param_groups[0]["lr"] == pytest.approx(initial)
    (alarm,) = read_alarms(tmp_path)
    assert alarm.action == "remediate: halved D's learning rate (0.0002 -> 0.0001)"


def test_remediate_switches_instance_noise_on_mid_run(tmp_path):
    detector = FiresAt([2], action="remediate", remedy="raise_instance_noise")
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 6, default_root_dir=tmp_path)
    (noise,) = [t for t in module.tricks if isinstance(t, InstanceNoise)]
    assert noise.step == 5  # it took part in later iterations
    assert noise.sigma_at(2) == pytest.approx(0.1 * (1 - 2 / 6))
    assert "switched instance noise on" in detector.alarms[0].action


def test_remediate_boosts_instance_noise_that_is_already_on(tmp_path):
    noise = InstanceNoise(sigma=0.05, schedule="constant")
    detector = FiresAt([2], action="remediate", remedy="raise_instance_noise")
    module = tiny_gan_module(tricks=[noise], detectors=[detector])
    fit_briefly(module, 4, default_root_dir=tmp_path)
    assert noise.current_sigma == pytest.approx(0.1)
    assert detector.alarms[0].action == "remediate: doubled the instance noise (sigma now 0.1)"


def test_remediate_label_smoothing_changes_ds_targets(tmp_path):
    detector = FiresAt([2], action="remediate", remedy="add_label_smoothing")
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 4, default_root_dir=tmp_path)
    (smoothing,) = [t for t in module.tricks if isinstance(t, LabelSmoothing)]
    ctx = module.engine.context
    real, fake = smoothing.targets(ctx, torch.ones(4), torch.zeros(4))
    assert torch.equal(real, torch.full((4,), 0.9)) and torch.equal(fake, torch.zeros(4))


class WeightRecorder(pl.Callback):
    def __init__(self):
        self.weights = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.weights[trainer.global_step] = copy.deepcopy(pl_module.generator.state_dict())


def test_rollback_restores_the_older_of_the_last_two_healthy_states(tmp_path):
    detector = FiresAt([10], action="rollback", rollback_every=3)
    recorder = WeightRecorder()  # after the module's step: it sees the restored weights
    module = tiny_gan_module(detectors=[detector])
    fit_briefly(module, 12, [recorder], default_root_dir=tmp_path)
    (alarm,) = detector.alarms
    # Healthy states were kept at steps 3, 6 and 9; the older of the last two is step 6.
    assert alarm.action == "rollback: restored the weights and optimizer states of step 6"
    for name, value in recorder.weights[10].items():
        assert torch.equal(value, recorder.weights[6][name])
    assert not torch.equal(recorder.weights[9]["net.0.weight"], recorder.weights[6]["net.0.weight"])
    assert not torch.equal(
        recorder.weights[12]["net.0.weight"], recorder.weights[10]["net.0.weight"]
    )


def test_a_resumed_run_rolls_back_to_the_state_the_killed_one_kept(tmp_path):
    # Healthy states are kept at steps 3 and 6; the run is checkpointed at 7 and resumed.
    first = FiresAt([], action="rollback", rollback_every=3)
    trainer = fit_briefly(tiny_gan_module(detectors=[first]), 7)
    trainer.save_checkpoint(tmp_path / "seven.ckpt")

    resumed, recorder = FiresAt([8], action="rollback", rollback_every=3), WeightRecorder()
    module = tiny_gan_module(detectors=[resumed])
    fit_briefly(module, 9, [recorder], ckpt_path=tmp_path / "seven.ckpt", default_root_dir=tmp_path)

    assert (
        resumed.alarms[0].action == "rollback: restored the weights and optimizer states of step 3"
    )
    kept = dict(first.snapshots.kept)[3]["module"]
    generator = {k[len("generator.") :]: v for k, v in kept.items() if k.startswith("generator.")}
    assert all(torch.equal(recorder.weights[8][k], v) for k, v in generator.items())


def test_a_rollback_at_the_first_iteration_goes_back_to_the_start(tmp_path):
    # The run's starting state is kept when it starts, before any periodic snapshot.
    detector = FiresAt([1], action="rollback", rollback_every=5)
    module = tiny_gan_module(detectors=[detector])
    start = [p.detach().clone() for p in module.generator.parameters()]
    fit_briefly(module, 1, default_root_dir=tmp_path)
    assert (
        detector.alarms[0].action == "rollback: restored the weights and optimizer states of step 0"
    )
    assert all(torch.equal(p, q) for p, q in zip(module.generator.parameters(), start))


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"action": "remediate"}, "needs a remedy"),
        ({"action": "remediate", "remedy": "pray"}, "remedy must be one of"),
        ({"action": "rollback", "rollback_every": 0}, "rollback_every"),
    ],
)
def test_bad_action_settings_are_refused(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        FiresAt([1], **kwargs)


def test_a_structural_trick_cannot_join_mid_run(tmp_path):
    module = tiny_gan_module()
    fit_briefly(module, 1, default_root_dir=tmp_path)
    with pytest.raises(ConfigError, match="must be in the run from the start"):
        module.add_trick(SpectralNorm())


def test_remedies_change_the_engines_optimizers_and_scheduler_bases(tiny_engine):
    engine = tiny_engine(lr=4e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(engine.d_optimizer, step_size=1000)
    engine.attach_optimizers(engine.g_optimizer, engine.d_optimizer, [scheduler])
    assert lower_d_lr(engine) == "halved D's learning rate (0.0004 -> 0.0002)"
    assert engine.d_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert scheduler.base_lrs == [pytest.approx(2e-4)]
    scheduler.step()  # the scheduler does not undo the change
    assert engine.d_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert (
        lower_lrs(engine) == "halved both learning rates (G 0.0004 -> 0.0002, D 0.0002 -> 0.0001)"
    )
    assert engine.g_optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)


def test_every_remedy_takes_the_engine_and_says_what_it_changed(tiny_engine):
    for name, remedy in REMEDIES.items():
        engine = tiny_engine()
        said = remedy(engine)
        assert isinstance(said, str) and said, name


DETECTORS = [
    getattr(monitors, name)
    for name in monitors.__all__
    if isinstance(getattr(monitors, name), type)
    and issubclass(getattr(monitors, name), Detector)
    and getattr(monitors, name) is not Detector
]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda cls: cls.__name__)
def test_every_detector_takes_every_action_from_a_recipe(detector):
    assert len(DETECTORS) == 8
    remediating = detector(action="remediate", remedy="lower_d_lr")
    assert remediating.remedy_name == "lower_d_lr"
    rolling_back = detector(action="rollback", rollback_every=50)
    assert rolling_back.snapshots.every == 50
