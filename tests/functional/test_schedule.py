"""Learning rates set under a scheduler's feet, and the critic-step rule."""

import pytest
import torch
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.schedule import (
    DelayedLinearDecay,
    set_learning_rates,
    wants_more_critic_steps,
)


def adam(lr=1e-3, groups=1):
    params = [{"params": [nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    return torch.optim.Adam(params, lr=lr)


def test_sets_every_group_without_a_scheduler():
    optimizer = adam(groups=2)
    set_learning_rates(optimizer, 4e-4)
    assert [g["lr"] for g in optimizer.param_groups] == [4e-4, 4e-4]
    assert all("initial_lr" not in g for g in optimizer.param_groups)


def test_a_step_scheduler_built_on_the_old_rate_follows_the_new_one():
    optimizer = adam(1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    set_learning_rates(optimizer, 1e-4, [scheduler])
    assert scheduler.base_lrs == [1e-4]
    assert optimizer.param_groups[0]["initial_lr"] == 1e-4
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.5**3)
    assert scheduler.get_last_lr() == pytest.approx([1e-4 * 0.5**3])


def test_a_warmup_that_starts_at_zero_still_starts_at_zero():
    optimizer = adam(1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, step / 4))
    assert optimizer.param_groups[0]["lr"] == 0.0
    set_learning_rates(optimizer, 2e-4, [scheduler])
    assert optimizer.param_groups[0]["lr"] == 0.0
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 2 / 4)


def test_a_scheduler_of_another_optimizer_is_left_alone():
    mine, other = adam(1e-3), adam(1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(other, step_size=1)
    set_learning_rates(mine, 5e-4, [scheduler])
    assert scheduler.base_lrs == [1e-3] and other.param_groups[0]["lr"] == 1e-3


def test_setting_twice_is_idempotent_and_mid_schedule_rates_keep_their_factor():
    optimizer = adam(1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    optimizer.step()
    scheduler.step()  # lr 1e-4 = 0.1 * base
    set_learning_rates(optimizer, 2e-3, [scheduler])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    set_learning_rates(optimizer, 2e-3, [scheduler])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert scheduler.base_lrs == [2e-3]


def test_rate_must_be_positive():
    with pytest.raises(ConfigError, match="> 0"):
        set_learning_rates(adam(), 0.0)


def test_fixed_critic_steps():
    assert [wants_more_critic_steps(done, 0.0, 5) for done in range(1, 7)] == [
        True, True, True, True, False, False,
    ]  # fmt: skip


def test_adaptive_critic_steps_follow_the_loss_up_to_the_cap():
    assert wants_more_critic_steps(1, torch.tensor(2.0), 5, threshold=1.0)
    assert not wants_more_critic_steps(1, torch.tensor(0.5), 5, threshold=1.0)
    assert not wants_more_critic_steps(5, 2.0, 5, threshold=1.0)  # cap defaults to n
    assert wants_more_critic_steps(5, 2.0, 5, threshold=1.0, max_steps=8)
    assert not wants_more_critic_steps(8, 2.0, 5, threshold=1.0, max_steps=8)


def test_delayed_linear_decay_holds_then_falls_linearly_to_the_end_factor():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.4)
    scheduler = DelayedLinearDecay(opt, total_iters=10, start=6, end_factor=0.25)
    rates = []
    for _ in range(14):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    # Held for 6 iterations, then 4 equal steps from 0.4 down to 0.1, then flat.
    expected = [0.4] * 7 + [0.4 - 0.075 * k for k in range(1, 5)] + [0.1] * 3
    assert rates == pytest.approx(expected)


def test_delayed_linear_decay_resumes_from_its_state_dict():
    def build():
        opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        return opt, DelayedLinearDecay(opt, total_iters=8, start=2)

    opt, scheduler = build()
    for _ in range(5):
        opt.step()
        scheduler.step()
    state = scheduler.state_dict()
    opt2, scheduler2 = build()
    scheduler2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    opt.step()
    opt2.step()
    scheduler.step()
    scheduler2.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1 - 4 / 6)
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


@pytest.mark.parametrize("kwargs", [{"start": 8}, {"start": -1}, {"end_factor": 1.5}])
def test_delayed_linear_decay_rejects_bad_settings(kwargs):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ConfigError):
        DelayedLinearDecay(opt, total_iters=8, **{"start": 0, **kwargs})
