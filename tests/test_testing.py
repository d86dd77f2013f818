"""The helpers other tests build on: tiny modules, brief fits, and what the recorders saw."""

import torch
from torch import nn

from gan_tricks.data import Toy2D
from gan_tricks.testing import (
    BatchRecorder,
    SignalHistory,
    fit_briefly,
    random_points,
    tiny_gan_module,
    tiny_image_gan_module,
)
from gan_tricks.tricks.base import Trick


def parameters(network: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in network.parameters()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


class ShiftReal(Trick):
    """Adds 1 to every real sample D sees."""

    def transform_real(self, ctx, real):
        return real + 1


def test_tiny_modules_are_the_same_every_call_and_overriding_one_network_keeps_the_other():
    first, second = tiny_gan_module(), tiny_gan_module()
    assert same(parameters(first.generator), parameters(second.generator))
    assert same(parameters(first.discriminator), parameters(second.discriminator))
    assert not same(parameters(first.generator), parameters(tiny_gan_module(seed=1).generator))
    critic = nn.Linear(2, 1)
    overridden = tiny_gan_module(discriminator=critic, loss="hinge")
    assert overridden.discriminator is critic and overridden.loss.name == "hinge"
    assert same(parameters(overridden.generator), parameters(first.generator))
    packed = tiny_gan_module(d_options={"in_dim": 4}, width=8, depth=1)
    assert packed.discriminator(torch.zeros(3, 4)).shape == (3,)
    assert same(
        parameters(packed.generator), parameters(tiny_gan_module(width=8, depth=1).generator)
    )


def test_tiny_image_module_makes_images_of_its_shape():
    module = tiny_image_gan_module(channels=3, d_options={"channels": 6})
    assert module.sample(4, seed=0).shape == (4, 3, 8, 8)
    assert module.discriminator(torch.zeros(2, 6, 8, 8)).shape == (2,)


def test_random_points_are_full_batches():
    batches = [batch for (batch,) in random_points(batch_size=5, batches=3, dim=4)]
    assert [tuple(b.shape) for b in batches] == [(5, 4)] * 3


def test_a_brief_fit_takes_its_steps_quietly_and_records_every_iteration():
    history, recorder = SignalHistory(), BatchRecorder()
    module = tiny_gan_module(n_critic=2, tricks=[recorder])
    trainer = fit_briefly(module, 3, callbacks=[history], batch_size=8)
    assert trainer.global_step == 3
    assert trainer.logger is None and trainer.checkpoint_callback is None
    assert len(history.rows) == 3 and history.series("d_steps") == [2.0, 2.0, 2.0]
    assert history.rows[-1].keys() == module.signals.as_dict().keys()
    assert history.series("g_loss")[-1] == float(module.signals.g_loss)
    per_iteration = [("d", "real"), ("d", "fake")] * 2 + [("g", "fake")]
    assert [(seen.step, seen.phase, seen.side) for seen in recorder.batches] == [
        (step, phase, side) for step in range(3) for phase, side in per_iteration
    ]
    assert all(seen.batch.shape == (8, 2) for seen in recorder.batches)
    assert len(recorder.of("real")) == 3 * 2 and len(recorder.of("fake")) == 3 * 3


def test_recorders_on_either_side_of_a_trick_show_what_it_changed():
    before, after = BatchRecorder(order=-1), BatchRecorder(order=1)
    fit_briefly(tiny_gan_module(tricks=[after, ShiftReal(), before]), 2)  # listed backwards
    for clean, shifted in zip(before.batches, after.batches):
        expected = clean.batch + 1 if clean.side == "real" else clean.batch
        assert shifted[:3] == clean[:3] and torch.equal(shifted.batch, expected)


def test_a_datamodule_reaches_the_trainer_and_a_checkpoint_resumes(tmp_path):
    data = Toy2D(name="grid25", batch_size=8, batches_per_epoch=4)
    trainer = fit_briefly(tiny_gan_module(), 2, data=data)
    assert trainer.datamodule is data
    trainer.save_checkpoint(tmp_path / "two.ckpt")
    history = SignalHistory()
    resumed = fit_briefly(tiny_gan_module(), 3, [history], ckpt_path=tmp_path / "two.ckpt")
    assert resumed.global_step == 3 and len(history.rows) == 1


def test_trainer_options_win_over_the_defaults():
    # No step limit, one epoch: every batch of the default data, once.
    trainer = fit_briefly(tiny_gan_module(), -1, max_epochs=1, batches=3)
    assert trainer.global_step == 3
