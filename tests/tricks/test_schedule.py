"""TTUR, NCritic and Schedule in real fits: learning rates, schedulers, resume, D steps per
iteration, scheduled settings."""

import math

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.functional import scheduled_value
from gan_tricks.testing import SignalHistory, fit_briefly, tiny_gan_module
from gan_tricks.tricks import GradientPenalty, Trick
from gan_tricks.tricks.schedule import TTUR, NCritic, Schedule


def halving(opt):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)


def test_ttur_sets_both_learning_rates_in_a_fit():
    trainer = fit_briefly(tiny_gan_module(tricks=[TTUR(g_lr=1e-4, d_lr=4e-4)]), 2)
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == 1e-4 and opt_d.param_groups[0]["lr"] == 4e-4


def test_ttur_moves_the_schedulers_base_rates():
    module = tiny_gan_module(
        g_scheduler=halving, d_scheduler=halving, tricks=[TTUR(g_lr=1e-4, d_lr=4e-4)]
    )
    trainer = fit_briefly(module, 3)
    opt_g, opt_d = trainer.optimizers
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.5**3)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 * 0.5**3)
    schedulers = {id(c.scheduler.optimizer): c.scheduler for c in trainer.lr_scheduler_configs}
    assert schedulers[id(opt_g)].base_lrs == [1e-4]
    assert schedulers[id(opt_d)].base_lrs == [4e-4]


def test_ttur_resume_continues_the_schedule_without_applying_twice(tmp_path):
    trainer = fit_briefly(tiny_gan_module(g_scheduler=halving, tricks=[TTUR(1e-4, 4e-4)]), 2)
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    resumed = fit_briefly(
        tiny_gan_module(g_scheduler=halving, tricks=[TTUR(1e-4, 4e-4)]),
        4,
        ckpt_path=tmp_path / "two.ckpt",
    )
    opt_g, opt_d = resumed.optimizers
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.5**4)
    assert opt_d.param_groups[0]["lr"] == 4e-4


def test_ttur_bad_rates():
    with pytest.raises(ConfigError, match="d_lr must be > 0"):
        TTUR(d_lr=0.0)


@pytest.mark.parametrize("n", [1, 3])
def test_fixed_n_critic_takes_n_d_steps_per_iteration(n):
    log = SignalHistory()
    module = tiny_gan_module(tricks=[NCritic(n=n)])
    fit_briefly(module, 2, callbacks=[log])
    assert log.series("d_steps") == [n, n]
    assert module.signals.d_steps == n


@pytest.mark.parametrize("threshold, expected", [(-1e9, 4), (1e9, 1)])
def test_adaptive_n_critic_trains_d_while_its_loss_is_high_up_to_the_cap(threshold, expected):
    log = SignalHistory()
    trick = NCritic(n=5, adaptive=True, threshold=threshold, max_steps=4)
    fit_briefly(tiny_gan_module(tricks=[trick]), 2, callbacks=[log])
    assert log.series("d_steps") == [expected, expected]


def test_adaptive_n_critic_stops_when_the_loss_falls_below_the_threshold():
    log, losses = SignalHistory(), []

    class Spy(NCritic):
        def wants_more_d_steps(self, ctx, d_steps_done, d_loss):
            losses.append(float(d_loss))
            return super().wants_more_d_steps(ctx, d_steps_done, d_loss)

    # The non-saturating D loss starts near 2 log 2 = 1.39; stop once it is below 1.4.
    spy = Spy(n=5, adaptive=True, threshold=1.4, max_steps=5)
    fit_briefly(tiny_gan_module(tricks=[spy]), 3, callbacks=[log])
    steps = iter(losses)
    for taken in map(int, log.series("d_steps")):
        seen = [next(steps) for _ in range(taken)]
        assert all(loss > 1.4 for loss in seen[:-1])
        assert seen[-1] <= 1.4 or taken == 5


def test_n_critic_that_disagrees_with_the_model_is_one_sentence():
    with pytest.raises(ConfigError, match=r"model.n_critic \(2\) and NCritic n \(5\) disagree"):
        fit_briefly(tiny_gan_module(n_critic=2, tricks=[NCritic(n=5)]), 1)


@pytest.mark.parametrize(
    "kwargs, says",
    [
        (dict(n=0), "n must be at least 1"),
        (dict(adaptive=True), "needs a threshold"),
        (dict(threshold=1.0), "only apply to the adaptive mode"),
        (dict(adaptive=True, threshold=1.0, max_steps=0), "max_steps must be at least 1"),
    ],
)
def test_n_critic_bad_arguments(kwargs, says):
    with pytest.raises(ConfigError, match=says):
        NCritic(**kwargs)


# ---------------------------------------------------------------- Schedule
def test_scheduled_value_by_hand():
    assert scheduled_value(0, 0.9, 0.99, 100, "linear") == 0.9
    assert scheduled_value(50, 0.9, 0.99, 100, "linear") == pytest.approx(0.945)
    quarter = (1 + math.cos(math.pi / 4)) / 2
    assert scheduled_value(25, 1.0, 0.0, 100, "cosine") == pytest.approx(quarter)
    assert scheduled_value(50, 1.0, 0.0, 100, "cosine") == pytest.approx(0.5)
    assert scheduled_value(10, 1.0, 0.0, 100, "cosine", begin=20) == 1.0  # before begin
    assert scheduled_value(500, 1.0, 0.0, 100, "cosine") == 0.0  # after the end
    with pytest.raises(ConfigError, match="linear, cosine"):
        scheduled_value(0, 1.0, 0.0, 10, "exponential")


def test_schedules_drive_adams_beta2_and_a_penalty_weight_and_are_logged():
    beta2 = Schedule("d_optimizer.betas[1]", start=0.9, end=0.99, kind="linear", steps=4)
    penalty = GradientPenalty(kind="r1", weight=1.0)
    gamma = Schedule("tricks.GradientPenalty.weight", start=1.0, end=0.1, steps=4)
    seen = []

    class Reads(Trick):  # what each iteration's D step uses, read in the step itself
        def after_d_step(self, ctx):
            seen.append((ctx.d_optimizer.param_groups[0]["betas"][1], penalty.weight))

    history = SignalHistory()
    module = tiny_gan_module(tricks=[penalty, beta2, gamma, Reads()])
    trainer = fit_briefly(module, 6, [history], log_every_n_steps=1)

    expected = [(0.9 + 0.0225 * min(i, 4), scheduled_value(i, 1.0, 0.1, 4)) for i in range(6)]
    assert seen == [pytest.approx(pair) for pair in expected]
    _, opt_d = trainer.optimizers
    assert opt_d.param_groups[0]["betas"][1] == pytest.approx(0.99)
    assert [row["schedule/d_optimizer.betas[1]"] for row in history.rows] == pytest.approx(
        [pair[0] for pair in expected]
    )


def test_schedule_mistakes_are_one_sentence():
    with pytest.raises(ConfigError, match="g_optimizer.KEY"):
        Schedule("generator.lr", 1.0, 0.0)
    with pytest.raises(ConfigError, match="names no trick of this run"):
        fit_briefly(tiny_gan_module(tricks=[Schedule("tricks.LeCam.weight", 1.0, 0.0)]), 1)
    with pytest.raises(ConfigError, match="both set that learning rate"):
        module = tiny_gan_module(g_scheduler=halving, tricks=[Schedule("g_optimizer.lr", 1e-3, 0)])
        fit_briefly(module, 1)
