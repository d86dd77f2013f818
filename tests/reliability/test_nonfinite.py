"""A NaN never reaches the weights: NaN injected into a loss, a gradient and a weight.

``NonFinite`` skips an optimizer step whose gradients are not finite (whatever its action),
rolls back weights that already are, and :class:`AtomicCheckpointIO` never writes them.
"""

import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from gan_tricks.checkpointing import AtomicCheckpointIO
from gan_tricks.engine import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional import drop_nonfinite_gradients
from gan_tricks.monitors import NonFinite
from gan_tricks.testing import fit_briefly, tiny_gan_module
from gan_tricks.tricks.base import Trick

STEPS = 6


class NaNPenaltyAt(Trick):
    """Adds a NaN term to D's loss in the D step of iteration ``step`` (1-based)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.d_steps = 0

    def d_penalty(self, ctx: StepContext) -> torch.Tensor | None:
        self.d_steps += 1
        if self.d_steps == self.step:
            return ctx.real_logits.sum() * float("nan")
        return None


class NaNGradientAt(pl.Callback):
    """Makes one D weight's gradient NaN in the backward pass of iteration ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step + 1 == self.step:
            weight = next(pl_module.discriminator.parameters())
            self.handle = weight.register_hook(_first_row_nan)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if hasattr(self, "handle"):
            self.handle.remove()
            del self.handle


def _first_row_nan(grad: torch.Tensor) -> torch.Tensor:
    return grad.clone().index_fill_(0, torch.tensor([0]), torch.nan)


class NaNWeightAfter(pl.Callback):
    """Writes a NaN into one D weight at the end of iteration ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).view(-1)[0] = torch.nan


def fit_and_read_discriminator(
    folder: Path,
    steps: int,
    *,
    tricks: tuple[Trick, ...] = (),
    detectors: tuple[NonFinite, ...] = (),
    callbacks: tuple[pl.Callback, ...] = (),
) -> dict[str, torch.Tensor]:
    module = tiny_gan_module(tricks=list(tricks), detectors=list(detectors))
    fit_briefly(module, steps, callbacks, default_root_dir=folder)  # alarms.jsonl goes there
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    return {name: value.clone() for name, value in module.discriminator.state_dict().items()}


@pytest.mark.parametrize("injection", [NaNPenaltyAt, NaNGradientAt], ids=["loss", "gradient"])
def test_a_nonfinite_update_of_d_is_skipped_and_reported(injection, tmp_path):
    before_the_bad_step = fit_and_read_discriminator(tmp_path, STEPS - 1)
    guard = NonFinite(action="warn")

    # A trick goes to the model; a Lightning callback to the trainer.
    injected = {"tricks" if issubclass(injection, Trick) else "callbacks": (injection(STEPS),)}
    after = fit_and_read_discriminator(tmp_path, STEPS, detectors=(guard,), **injected)

    # D is bit for bit where it was before the poisoned step: the update never happened.
    assert all(torch.equal(after[name], value) for name, value in before_the_bad_step.items())
    assert guard.skipped_updates == 1
    assert [alarm.step for alarm in guard.alarms] == [STEPS]
    assert guard.alarms[0].action == "warn (1 non-finite updates skipped so far)"


def test_the_default_action_stops_the_run_with_healthy_weights(tmp_path):
    guard = NonFinite()
    module = tiny_gan_module(tricks=[NaNPenaltyAt(4)], detectors=[guard])
    trainer = fit_briefly(module, 50, default_root_dir=tmp_path)
    assert trainer.global_step == 4
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    assert guard.alarms[0].action.startswith("stop")


def test_nan_weights_roll_back_to_a_healthy_state(tmp_path):
    guard = NonFinite(action="rollback", weights_every=1, rollback_every=2)
    module = tiny_gan_module(detectors=[guard])
    fit_briefly(module, 9, [NaNWeightAfter(5)], default_root_dir=tmp_path)
    # The callback writes the NaN after iteration 5's checks: iteration 6 is the first to see it.
    assert [alarm.step for alarm in guard.alarms] == [6]
    assert guard.alarms[0].action.startswith("rollback: restored the weights")
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())


def test_a_rollback_before_the_first_periodic_snapshot_goes_back_to_the_start(tmp_path):
    guard = NonFinite(action="rollback", weights_every=1, rollback_every=1000)
    module = tiny_gan_module(detectors=[guard])
    start = {name: value.clone() for name, value in module.discriminator.state_dict().items()}
    fit_briefly(module, 9, [NaNWeightAfter(5)], default_root_dir=tmp_path)
    assert guard.alarms[0].action.startswith(
        "rollback: restored the weights and optimizer states of step 0"
    )
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    assert not all(torch.equal(module.discriminator.state_dict()[n], v) for n, v in start.items())


class NaNWeightsAfter(pl.Callback):
    """Writes a NaN into one D weight at the end of each iteration of ``steps``."""

    def __init__(self, *steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step in self.steps:
            with torch.no_grad():
                next(pl_module.discriminator.parameters()).view(-1)[0] = torch.nan


def test_a_rollback_that_retries_lowers_the_rates_each_time_then_stops(tmp_path):
    guard = NonFinite(action="rollback", retries=2, lr_factor=0.5, weights_every=1)
    module = tiny_gan_module(detectors=[guard])
    trainer = fit_briefly(module, 40, [NaNWeightsAfter(5, 8, 11)], default_root_dir=tmp_path)

    assert [alarm.step for alarm in guard.alarms] == [6, 9, 12]  # no cooldown hides one
    first, second, last = (alarm.action for alarm in guard.alarms)
    assert first.startswith("rollback 1 of 2: restored step 0, learning rates x0.5")
    assert second.startswith("rollback 2 of 2:")
    assert last.startswith("stop: 2 rollbacks, each with lower learning rates, did not keep")
    assert trainer.global_step == 12
    untouched = tiny_gan_module()
    fit_briefly(untouched, 1, default_root_dir=tmp_path / "untouched")
    start = learning_rates(untouched)
    assert learning_rates(module) == pytest.approx([0.25 * lr for lr in start])
    assert all(bool(torch.isfinite(p).all()) for p in module.parameters())
    copy = NonFinite(action="rollback", retries=2)
    copy.load_state_dict(guard.state_dict())
    assert copy.retries_used == 2


def learning_rates(module) -> list[float]:
    return [o.param_groups[0]["lr"] for o in (module.engine.g_optimizer, module.engine.d_optimizer)]


def test_retries_need_a_rollback_and_a_factor_below_one():
    with pytest.raises(ConfigError, match="need action: rollback"):
        NonFinite(action="stop", retries=3)
    with pytest.raises(ConfigError, match=r"lr_factor must be in \(0, 1\)"):
        NonFinite(action="rollback", retries=3, lr_factor=1.5)


def test_no_checkpoint_is_written_holding_nan_weights(tmp_path):
    from gan_tricks.run import LastCheckpoint

    module = tiny_gan_module(detectors=[NonFinite(action="warn")])
    checkpoints = tmp_path / "checkpoints"
    with pytest.warns(UserWarning, match="not writing .*last.ckpt: the weights hold NaN"):
        fit_briefly(
            module,
            6,
            [NaNWeightAfter(3), LastCheckpoint(checkpoints, 1)],
            enable_checkpointing=True,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=tmp_path,
        )
    assert not bool(torch.isfinite(next(module.discriminator.parameters())).all())
    saved = torch.load(checkpoints / "last.ckpt", weights_only=True)  # safe to load, too
    assert saved["global_step"] == 2  # the last healthy one
    assert all(bool(torch.isfinite(t).all()) for t in saved["state_dict"].values())


def test_drop_nonfinite_gradients_turns_the_step_into_a_no_op():
    layer = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(torch.ones(1, 3)).sum().backward()
    assert not drop_nonfinite_gradients(optimizer)  # finite: nothing changes
    assert all(p.grad is not None for p in layer.parameters())
    optimizer.step()
    weights = [p.detach().clone() for p in layer.parameters()]
    moments = [optimizer.state[p]["exp_avg"].clone() for p in layer.parameters()]

    (layer(torch.ones(1, 3)).sum() * float("inf")).backward()
    assert drop_nonfinite_gradients(optimizer)
    optimizer.step()

    assert all(p.grad is None for p in layer.parameters())
    assert all(torch.equal(p, w) for p, w in zip(layer.parameters(), weights, strict=True))
    assert all(
        torch.equal(optimizer.state[p]["exp_avg"], m)
        for p, m in zip(layer.parameters(), moments, strict=True)
    )
    assert all(int(optimizer.state[p]["step"]) == 1 for p in layer.parameters())


def test_atomic_checkpoint_io_keeps_the_old_file_when_the_new_weights_are_nan(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 1}, path)
    nan = {"state_dict": {"w": torch.tensor([1.0, float("nan")])}, "global_step": 2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        io.save_checkpoint(nan, path)
    assert "weights hold NaN or Inf (w)" in str(caught[0].message)
    assert torch.load(path, weights_only=True)["global_step"] == 1
