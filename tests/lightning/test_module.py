"""GANModule, the Lightning adapter: it drives the engine with Lightning's optimizers, step
counting, precision, logging and checkpoints, and trains exactly as the engine does."""

from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from gan_tricks.engine import SIGNALS, GANEngine, StepSignals
from gan_tricks.errors import ConfigError
from gan_tricks.functional import Latent
from gan_tricks.lightning import GANModule
from gan_tricks.models import MLPDiscriminator, MLPGenerator
from gan_tricks.testing import SignalHistory, fit_briefly, random_points, tiny_gan_module
from gan_tricks.tricks import Trick


class Recorder(Trick):
    def __init__(self):
        self.calls: list[str] = []

    def after_d_step(self, ctx):
        self.calls.append("after_d_step")

    def after_g_step(self, ctx):
        self.calls.append("after_g_step")


def test_global_step_counts_generator_steps_not_optimizer_steps():
    recorder = Recorder()
    module = tiny_gan_module(n_critic=3, tricks=[recorder])
    trainer = fit_briefly(module, steps=4)
    assert trainer.global_step == 4 == module.engine.iteration
    assert recorder.calls.count("after_g_step") == 4
    assert recorder.calls.count("after_d_step") == 12


def test_the_module_trains_exactly_as_the_engine_in_a_plain_loop():
    module = tiny_gan_module(n_critic=2)
    fit_briefly(module, steps=6, batches=8)
    torch.manual_seed(0)
    engine = GANEngine(
        MLPGenerator(latent_dim=2, out_dim=2, width=16, depth=2),
        MLPDiscriminator(in_dim=2, width=16, depth=2),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        lambda p: torch.optim.Adam(p, lr=1e-3),
        latent=Latent(dim=2),
        n_critic=2,
        seed=0,  # fit_briefly's run is seeded 0 (torch's initial seed after manual_seed(0))
    )
    for (real,) in list(random_points(16, 8))[:6]:
        engine.step(real)
    for ours, theirs in zip(module.parameters(), engine.networks.parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_signals_are_a_typed_record_of_the_last_iteration():
    module = tiny_gan_module()
    fit_briefly(module, steps=2, log_every_n_steps=1)
    assert isinstance(module.signals, StepSignals)
    assert set(SIGNALS) <= set(module.signals.as_dict())


def test_gradient_norms_are_taken_on_logging_steps_unless_a_detector_reads_them():
    from gan_tricks.monitors import GradientPathology

    history = SignalHistory()
    fit_briefly(tiny_gan_module(), steps=4, callbacks=[history], log_every_n_steps=2)
    with_norm = [i for i, row in enumerate(history.rows) if "d_grad_norm" in row]
    assert with_norm == [1, 3]  # Lightning logs after steps 2 and 4
    history = SignalHistory()
    module = tiny_gan_module(detectors=[GradientPathology()])
    fit_briefly(module, steps=4, callbacks=[history], log_every_n_steps=50)
    assert all("d_grad_norm" in row and "g_grad_norm" in row for row in history.rows)


class HookCounter(pl.Callback):
    """Counts the hooks around backward and the optimizers' steps, and what they are given."""

    def __init__(self) -> None:
        self.counts = {"before_backward": 0, "after_backward": 0, "before_step": 0}
        self.optimizers: set[type] = set()

    def on_before_backward(self, trainer, pl_module, loss):
        assert loss.requires_grad
        self.counts["before_backward"] += 1

    def on_after_backward(self, trainer, pl_module):
        assert any(p.grad is not None for p in pl_module.parameters())
        self.counts["after_backward"] += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.optimizers.add(type(optimizer))
        self.counts["before_step"] += 1


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_lightning_calls_its_hooks_around_backward_and_every_step(precision):
    counter = HookCounter()
    module = tiny_gan_module(n_critic=2)
    trainer = fit_briefly(module, steps=3, callbacks=[counter], precision=precision)
    assert trainer.global_step == 3  # G steps, as Lightning counts them
    assert counter.counts == {"before_backward": 9, "after_backward": 9, "before_step": 9}
    assert counter.optimizers == {torch.optim.Adam}  # the torch optimizer, as Lightning passes


def test_a_module_that_overrides_backward_and_its_hooks_is_called():
    class CountingModule(GANModule):
        calls: ClassVar[list[str]] = []

        def backward(self, loss, *args, **kwargs):
            self.calls.append("backward")
            loss.backward(*args, **kwargs)

        def on_before_optimizer_step(self, optimizer):
            self.calls.append("before_step")

    base = tiny_gan_module()
    module = CountingModule(base.generator, base.discriminator, latent=base.latent)
    fit_briefly(module, steps=2)
    assert CountingModule.calls == ["backward", "before_step"] * 4


def test_bad_learning_rate_fails_at_construction():
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        tiny_gan_module(g_optimizer=lambda params: torch.optim.Adam(params, lr=0.0))
    with pytest.raises(ConfigError, match="model.d_optimizer"):
        tiny_gan_module(d_optimizer=lambda params: torch.optim.Adam(params, lr=-1.0))


def test_n_critic_must_be_positive():
    with pytest.raises(ConfigError, match="n_critic"):
        tiny_gan_module(n_critic=0)


def test_schedulers_step_once_per_iteration_for_each_network():
    module = tiny_gan_module(
        g_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5),
        d_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1),
    )
    trainer = fit_briefly(module, steps=4)
    g_opt, d_opt = trainer.optimizers
    assert g_opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**4)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.1**2)


def test_generator_that_does_not_match_the_data_is_one_sentence():
    class Points(pl.LightningDataModule):
        sample_shape = (3,)
        kind = "points"

        def train_dataloader(self):
            return DataLoader(torch.randn(64, 3), batch_size=16)

    with pytest.raises(ConfigError, match=r"makes samples of shape \(2,\) but the data has"):
        fit_briefly(tiny_gan_module(), 1, data=Points())


def test_signals_reach_the_logger_on_logging_steps_and_module_signals_every_step(tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    history = SignalHistory()
    logger = CSVLogger(tmp_path, name="", version="")
    fit_briefly(tiny_gan_module(), 10, [history], logger=logger, log_every_n_steps=4)
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    header, lines = rows[0].split(","), [r.split(",") for r in rows[1:]]
    logged = {int(line[header.index("step")]): line for line in lines}
    assert sorted(logged) == [3, 7]
    assert len(history.rows) == 10
    # The row logged at step 7 is the eighth iteration's signals, not a stale value.
    d_loss = float(logged[7][header.index("train/d_loss")])
    assert d_loss == pytest.approx(history.rows[7]["d_loss"].item(), rel=1e-6)


def test_a_checkpoint_carries_the_engine_state(tmp_path):
    from gan_tricks.lightning.module import ENGINE_STATE_KEY

    module = tiny_gan_module()
    trainer = fit_briefly(module, 3)
    path = tmp_path / "last.ckpt"
    trainer.save_checkpoint(path)
    saved = torch.load(path, weights_only=True)[ENGINE_STATE_KEY]
    assert saved["iteration"] == 3 and "latent_generator" in saved
    assert "networks" not in saved  # Lightning's own state_dict holds them
