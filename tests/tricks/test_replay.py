"""ExperienceReplay: old fakes in D's steps only, a saved reservoir."""

import dataclasses

import pytest
import torch

from gan_tricks.errors import ConfigError
from gan_tricks.testing import BatchRecorder, fit_briefly, tiny_gan_module
from gan_tricks.tricks.base import ORDER_REPLAY
from gan_tricks.tricks.replay import ExperienceReplay

BATCH = 16  # fit_briefly's default batch size


def test_d_steps_mix_in_earlier_fakes_and_g_steps_see_only_fresh_ones():
    fresh, shown = BatchRecorder(ORDER_REPLAY - 1), BatchRecorder(ORDER_REPLAY + 1)
    replay = ExperienceReplay(capacity=1000, share=0.5)
    fit_briefly(tiny_gan_module(tricks=[shown, replay, fresh]), 12)
    old_share = []
    history: list[torch.Tensor] = []
    for fresh_fake, shown_fake in zip(fresh.of("fake"), shown.of("fake")):
        phase, before, after = fresh_fake.phase, fresh_fake.batch, shown_fake.batch
        if phase == "g":
            assert torch.equal(after, before)
            continue
        from_now = (after[:, None] == before[None]).all(-1).any(1)
        if history:
            past = torch.cat(history)
            from_past = (after[:, None] == past[None]).all(-1).any(1)
            assert (from_now | from_past).all()  # every row is a fake G made
            old_share.append(from_past.float().mean().item())
        else:
            assert from_now.all()  # the reservoir starts empty
        history.append(before)
    assert len(replay.buffer) == 12 * BATCH
    assert sum(old_share) / len(old_share) == pytest.approx(0.5, abs=0.08)


def test_transform_fake_leaves_the_g_phase_alone():
    replay = ExperienceReplay(capacity=10, share=1.0)
    replay.buffer.push(torch.zeros(10, 2))
    fake = torch.ones(4, 2)
    context = tiny_gan_module().engine.context
    d_step, g_step = (dataclasses.replace(context, phase=phase) for phase in ("d", "g"))
    assert replay.transform_fake(g_step, fake) is fake
    assert torch.equal(replay.transform_fake(d_step, fake), torch.zeros(4, 2))


def test_state_dict_round_trip_keeps_the_reservoir():
    replay = ExperienceReplay(capacity=20, share=0.5)
    fit_briefly(tiny_gan_module(tricks=[replay]), 3)
    state = replay.state_dict()
    copy = ExperienceReplay(capacity=20)
    copy.load_state_dict(state)
    assert copy.buffer.seen == replay.buffer.seen == 3 * BATCH
    assert torch.equal(copy.buffer.storage, replay.buffer.storage)


@pytest.mark.parametrize(
    "kwargs, match", [({"capacity": 0}, "capacity"), ({"share": 1.5}, "share")]
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ExperienceReplay(**kwargs)
