"""What a detector does beyond reporting: roll back to healthy weights, or apply a remedy.

``remediate`` applies one named remedy from :data:`REMEDIES`; each changes the run in place
from the next iteration and returns one line saying what it changed, which goes into the
alarm's ``action`` (console, ``alarms.jsonl``, W&B). ``rollback`` restores the weights and
optimizer states a :class:`HealthySnapshots` kept from before the failure, and training goes
on from there (the iteration count does not go back).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl

from gan_tricks.errors import ConfigError
from gan_tricks.tricks import InstanceNoise, LabelSmoothing


def _scale_learning_rate(optimizer, factor: float) -> tuple[float, float]:
    before = optimizer.param_groups[0]["lr"]
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:  # a scheduler's base, or it would undo the change
            group["initial_lr"] *= factor
    return before, optimizer.param_groups[0]["lr"]


def _scheduler_bases(trainer: pl.Trainer, optimizer, factor: float) -> None:
    for config in trainer.lr_scheduler_configs:
        if config.scheduler.optimizer is optimizer:
            config.scheduler.base_lrs = [lr * factor for lr in config.scheduler.base_lrs]


def lower_d_lr(trainer: pl.Trainer, module: pl.LightningModule) -> str:
    """Halve D's learning rate (and its scheduler's base)."""
    optimizer = trainer.optimizers[1]
    before, after = _scale_learning_rate(optimizer, 0.5)
    _scheduler_bases(trainer, optimizer, 0.5)
    return f"halved D's learning rate ({before:.3g} -> {after:.3g})"


def lower_lrs(trainer: pl.Trainer, module: pl.LightningModule) -> str:
    """Halve both learning rates (and their schedulers' bases)."""
    changes = []
    for name, optimizer in zip(("G", "D"), trainer.optimizers, strict=False):
        before, after = _scale_learning_rate(optimizer, 0.5)
        _scheduler_bases(trainer, optimizer, 0.5)
        changes.append(f"{name} {before:.3g} -> {after:.3g}")
    return f"halved both learning rates ({', '.join(changes)})"


def raise_instance_noise(trainer: pl.Trainer, module: pl.LightningModule) -> str:
    """Double the instance noise of the run, or switch it on (sigma 0.1, annealed to 0 at the
    run's last iteration) when it has none."""
    noise = next((c for c in trainer.callbacks if isinstance(c, InstanceNoise)), None)
    if noise is not None:
        noise.boost(2.0)
        return f"doubled the instance noise (sigma now {noise.current_sigma:.3g})"
    anneal = trainer.max_steps if trainer.max_steps > 0 else None
    schedule = "linear" if anneal else "constant"
    noise = InstanceNoise(sigma=0.1, anneal_steps=anneal, schedule=schedule)
    noise.step = trainer.global_step
    module.add_trick(noise)
    return f"switched instance noise on (sigma {noise.current_sigma:.3g}, {schedule})"


def add_label_smoothing(trainer: pl.Trainer, module: pl.LightningModule) -> str:
    """Switch one-sided label smoothing on (real targets 0.9), unless labels are smoothed."""
    if any(isinstance(c, LabelSmoothing) for c in trainer.callbacks):
        return "label smoothing was already on: nothing changed"
    module.add_trick(LabelSmoothing(one_sided=True))
    return "switched one-sided label smoothing on (real targets 0.9)"


REMEDIES: dict[str, Callable[[pl.Trainer, pl.LightningModule], str]] = {
    "lower_d_lr": lower_d_lr,
    "lower_lrs": lower_lrs,
    "raise_instance_noise": raise_instance_noise,
    "add_label_smoothing": add_label_smoothing,
}


def check_remedy(name: str | None) -> None:
    if name is not None and name not in REMEDIES:
        raise ConfigError(f"remedy must be one of {', '.join(REMEDIES)} (got {name!r}).")


class HealthySnapshots:
    """Copies of the module's weights and the optimizers' states, taken every ``every``
    iterations while the run looks healthy; :meth:`restore` goes back to the older of the last
    two, so that a failure that built up before its alarm is not restored with it."""

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ConfigError(f"rollback_every must be at least 1 (got {every}).")
        self.every = every
        self.kept: deque[tuple[int, dict[str, Any]]] = deque(maxlen=2)

    def maybe_take(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        step = trainer.global_step
        if step % self.every == 0 and (not self.kept or self.kept[-1][0] != step):
            state = {
                "module": copy.deepcopy(module.state_dict()),
                "optimizers": [copy.deepcopy(o.state_dict()) for o in trainer.optimizers],
            }
            self.kept.append((step, state))

    def restore(self, trainer: pl.Trainer, module: pl.LightningModule) -> int | None:
        """Load the older snapshot; the step it was taken at, or None if there is none."""
        if not self.kept:
            return None
        step, state = self.kept[0]
        module.load_state_dict(state["module"])
        for optimizer, saved in zip(trainer.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        self.kept.clear()
        self.kept.append((step, state))
        return step
