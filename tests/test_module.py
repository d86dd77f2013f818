"""The adversarial step's protocol: every trick is called at every hook point, in order."""

from typing import ClassVar

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from gan_tricks.errors import ConfigError
from gan_tricks.functional import get_loss
from gan_tricks.module import SIGNALS
from gan_tricks.testing import SignalHistory, fit_briefly, tiny_gan_module
from gan_tricks.tricks import Trick

BATCH = 16  # fit_briefly's default batch size


class Recorder(Trick):
    """Records every hook call; optionally asks for extra D steps."""

    def __init__(self, d_steps_wanted: int = 0):
        self.calls: list[str] = []
        self.d_steps_wanted = d_steps_wanted

    def wants_more_d_steps(self, module, d_steps_done, d_loss):
        self.calls.append("wants_more_d_steps")
        return d_steps_done < self.d_steps_wanted

    def transform_real(self, module, real, phase):
        self.calls.append(f"transform_real:{phase}")
        return real

    def transform_fake(self, module, fake, phase):
        self.calls.append(f"transform_fake:{phase}")
        return fake

    def targets(self, module, real_target, fake_target):
        self.calls.append("targets")
        return real_target, fake_target

    def d_penalty(self, module, real, fake, real_logits, fake_logits):
        self.calls.append("d_penalty")

    def g_penalty(self, module, fake, fake_logits):
        self.calls.append("g_penalty")

    def after_d_step(self, module):
        self.calls.append("after_d_step")

    def after_g_step(self, module):
        self.calls.append("after_g_step")


D_STEP = [
    "transform_real:d",
    "transform_fake:d",
    "targets",
    "d_penalty",
    "after_d_step",
    "wants_more_d_steps",
]
G_STEP = ["transform_fake:g", "g_penalty", "after_g_step"]


def test_every_hook_is_called_in_order_with_n_critic():
    recorder = Recorder()
    fit_briefly(tiny_gan_module(n_critic=2), steps=1, callbacks=[recorder])
    assert recorder.calls == D_STEP * 2 + G_STEP


def test_global_step_counts_generator_steps_not_optimizer_steps():
    recorder = Recorder()
    module = tiny_gan_module(n_critic=3)
    trainer = fit_briefly(module, steps=4, callbacks=[recorder])
    assert trainer.global_step == 4
    assert recorder.calls.count("after_g_step") == 4
    assert recorder.calls.count("after_d_step") == 12


def test_a_trick_can_ask_for_more_discriminator_steps():
    recorder = Recorder(d_steps_wanted=3)
    module = tiny_gan_module()
    fit_briefly(module, steps=2, callbacks=[recorder])
    assert recorder.calls.count("after_d_step") == 6
    assert module.signals["d_steps"].item() == 3


class ReadsGradientNorms(pl.Callback):
    reads_gradient_norms = True


def test_every_trick_is_called_and_all_signals_recorded():
    first, second = Recorder(), Recorder()
    module = tiny_gan_module()
    fit_briefly(module, steps=1, callbacks=[first, second, ReadsGradientNorms()])
    assert first.calls == second.calls == D_STEP + G_STEP
    assert set(SIGNALS) <= set(module.signals)
    assert all(torch.isfinite(v) for v in module.signals.values())
    assert module.signals["g_grad_norm"] > 0 and module.signals["d_grad_norm"] > 0


def test_gradient_norms_are_taken_on_logging_steps_unless_a_callback_reads_them():
    history = SignalHistory()
    fit_briefly(tiny_gan_module(), steps=4, callbacks=[history], log_every_n_steps=2)
    with_norm = [i for i, row in enumerate(history.rows) if "d_grad_norm" in row]
    assert with_norm == [1, 3]  # Lightning logs after steps 2 and 4
    history = SignalHistory()
    fit_briefly(tiny_gan_module(), steps=4, callbacks=[history, ReadsGradientNorms()])
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
        assert pl_module._current_fx_name == "on_before_optimizer_step"
        self.optimizers.add(type(optimizer))
        self.counts["before_step"] += 1


def _weights(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_the_hooks_around_backward_and_steps_are_called_as_lightning_calls_them(precision):
    # 32-bit on one device: the module calls the overriding hooks itself (no dispatch over
    # every callback); mixed precision: Lightning's path. Same calls either way.
    counter = HookCounter()
    module = tiny_gan_module(n_critic=2)
    trainer = fit_briefly(module, steps=3, callbacks=[counter], precision=precision)
    assert (module._step_hooks is not None) == (precision == "32-true")
    assert trainer.global_step == 3  # G steps, as Lightning counts them
    assert counter.counts == {"before_backward": 9, "after_backward": 9, "before_step": 9}
    assert counter.optimizers == {torch.optim.Adam}  # the torch optimizer, as Lightning passes


def test_calling_the_hooks_directly_trains_exactly_as_lightnings_path():
    direct = tiny_gan_module(n_critic=2)
    fit_briefly(direct, steps=3, callbacks=[HookCounter()])
    assert direct._step_hooks is not None
    dispatched = tiny_gan_module(n_critic=2)
    fit_briefly(dispatched, steps=3, callbacks=[HookCounter()], profiler="simple")
    assert dispatched._step_hooks is None  # a profiler keeps Lightning's path
    for ours, lightnings in zip(_weights(direct), _weights(dispatched), strict=True):
        torch.testing.assert_close(ours, lightnings, rtol=0, atol=0)


def test_a_module_that_overrides_backward_and_its_hooks_is_called():
    from gan_tricks.module import GANModule

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


class SwapTargetsAndPenalise(Trick):
    """Swaps D's targets and adds a constant penalty; keeps D's logits to recompute the loss."""

    def targets(self, module, real_target, fake_target):
        self.swapped = (fake_target + 0.25, real_target - 0.25)
        return self.swapped

    def d_penalty(self, module, real, fake, real_logits, fake_logits):
        self.logits = (real_logits.detach(), fake_logits.detach())
        return torch.tensor(5.0)

    def g_penalty(self, module, fake, fake_logits):
        self.g_logits = fake_logits.detach()
        return torch.tensor(2.0)


def test_targets_and_penalties_reach_the_losses():
    trick = SwapTargetsAndPenalise()
    module = tiny_gan_module(loss="nonsaturating")
    fit_briefly(module, steps=1, callbacks=[trick])
    real_logits, fake_logits = trick.logits
    expected_d = get_loss("nonsaturating").d_loss(real_logits, fake_logits, *trick.swapped) + 5.0
    assert module.signals["d_loss"].item() == pytest.approx(expected_d.item(), rel=1e-5)
    assert module.signals["d_penalty/SwapTargetsAndPenalise"].item() == 5.0
    expected_g = get_loss("nonsaturating").g_loss(trick.g_logits) + 2.0
    assert module.signals["g_loss"].item() == pytest.approx(expected_g.item(), rel=1e-5)


class ConstantPenalty(Trick):
    """Adds ``value`` to D's loss on the D steps where ``step % every == 0``."""

    def __init__(self, value: float, every: int = 1):
        self.value, self.every, self.calls = value, every, 0

    def d_penalty(self, module, real, fake, real_logits, fake_logits):
        self.calls += 1
        return torch.tensor(self.value) if (self.calls - 1) % self.every == 0 else None


def test_two_tricks_of_one_class_both_count_under_numbered_names():
    module = tiny_gan_module()
    fit_briefly(module, steps=1, callbacks=[ConstantPenalty(3.0), ConstantPenalty(4.0)])
    assert module.signals["d_penalty/ConstantPenalty"].item() == 3.0
    assert module.signals["d_penalty/ConstantPenalty_2"].item() == 4.0


def test_a_skipped_penalty_reads_zero_not_its_last_value():
    module = tiny_gan_module()
    fit_briefly(module, steps=2, callbacks=[ConstantPenalty(3.0, every=2)])
    # Step 1 added 3; step 2 skipped it, so the signal is 0, not a repeated 3.
    assert module.signals["d_penalty/ConstantPenalty"].item() == 0.0


class BatchProbe(nn.Module):
    """A BatchNorm discriminator that records the batches it is given."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


class MarkReal(Trick):
    def transform_real(self, module, real, phase):
        return torch.full_like(real, 100.0)


@pytest.mark.parametrize("separate", [True, False])
def test_batchnorm_sees_real_only_and_fake_only_batches_unless_mixed(separate):
    probe = BatchProbe()
    fit_briefly(
        tiny_gan_module(discriminator=probe, separate_batches=separate), 1, callbacks=[MarkReal()]
    )
    d_step_batches = probe.seen[:-1] if separate else probe.seen[:1]
    if separate:
        real_batch, fake_batch = d_step_batches
        assert len(real_batch) == len(fake_batch) == BATCH
        assert torch.all(real_batch == 100.0) and not torch.any(fake_batch == 100.0)
    else:
        (mixed,) = d_step_batches
        assert len(mixed) == 2 * BATCH
        assert torch.all(mixed[:BATCH] == 100.0) and not torch.any(mixed[BATCH:] == 100.0)


def test_relativistic_loss_shows_real_batch_in_generator_step():
    probe = BatchProbe()
    fit_briefly(tiny_gan_module(discriminator=probe, loss="relativistic_average"), 1)
    assert len(probe.seen) == 4  # D step: real, fake; G step: real, fake


def test_generator_step_does_not_touch_discriminator_gradients():
    class CheckGrads(Trick):
        def after_d_step(self, module):
            self.after_d = [p.grad.clone() for p in module.discriminator.parameters()]

        def after_g_step(self, module):
            self.after_g = [p.grad.clone() for p in module.discriminator.parameters()]
            self.d_requires_grad = [p.requires_grad for p in module.discriminator.parameters()]

    check = CheckGrads()
    fit_briefly(tiny_gan_module(), 1, callbacks=[check])
    # The G step neither computes nor accumulates gradients of D's parameters.
    assert all(torch.equal(a, b) for a, b in zip(check.after_d, check.after_g))
    assert all(check.d_requires_grad)  # restored after the G step


def test_bad_learning_rate_fails_at_construction():
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        tiny_gan_module(g_optimizer=lambda params: torch.optim.Adam(params, lr=0.0))
    with pytest.raises(ConfigError, match="model.d_optimizer"):
        tiny_gan_module(d_optimizer=lambda params: torch.optim.Adam(params, lr=-1.0))


def test_n_critic_must_be_positive():
    with pytest.raises(ConfigError, match="n_critic"):
        tiny_gan_module(n_critic=0)


def test_sample_is_seeded_and_restores_train_mode():
    module = tiny_gan_module()
    module.train()
    a, b = module.sample(10, seed=3), module.sample(10, seed=3)
    assert torch.equal(a, b) and a.shape == (10, 2)
    assert module.generator.training


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

        def train_dataloader(self):
            return DataLoader(torch.randn(64, 3), batch_size=16)

    with pytest.raises(ConfigError, match=r"makes samples of shape \(2,\) but the data has"):
        fit_briefly(tiny_gan_module(), 1, data=Points())


def test_signals_reach_the_logger_on_logging_steps_and_module_signals_every_step(tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    from gan_tricks.testing import SignalHistory

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
