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
from typing import TYPE_CHECKING, Any

from gan_tricks.errors import ConfigError

if TYPE_CHECKING:
    from gan_tricks.engine.adversarial import GANEngine


def _scale_learning_rate(optimizer, factor: float) -> tuple[float, float]:
    before = optimizer.param_groups[0]["lr"]
    for group in optimizer.param_groups:
        group["lr"] *= factor
        if "initial_lr" in group:  # a scheduler's base, or it would undo the change
            group["initial_lr"] *= factor
    return before, optimizer.param_groups[0]["lr"]


def _scheduler_bases(engine: GANEngine, optimizer, factor: float) -> None:
    for scheduler in engine.schedulers:
        if getattr(scheduler, "optimizer", None) is optimizer:
            scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]


def lower_d_lr(engine: GANEngine) -> str:
    """Halve D's learning rate (and its scheduler's base)."""
    before, after = _scale_learning_rate(engine.d_optimizer, 0.5)
    _scheduler_bases(engine, engine.d_optimizer, 0.5)
    return f"halved D's learning rate ({before:.3g} -> {after:.3g})"


def lower_lrs(engine: GANEngine) -> str:
    """Halve both learning rates (and their schedulers' bases)."""
    changes = []
    for name, optimizer in (("G", engine.g_optimizer), ("D", engine.d_optimizer)):
        before, after = _scale_learning_rate(optimizer, 0.5)
        _scheduler_bases(engine, optimizer, 0.5)
        changes.append(f"{name} {before:.3g} -> {after:.3g}")
    return f"halved both learning rates ({', '.join(changes)})"


def rates_of(engine: GANEngine) -> list[list[tuple[float, float | None]]]:
    """Each optimizer's (lr, initial_lr) per parameter group, G's then D's."""
    return [
        [(group["lr"], group.get("initial_lr")) for group in optimizer.param_groups]
        for optimizer in _optimizers(engine)
    ]


def set_lowered_rates(
    engine: GANEngine, rates: list[list[tuple[float, float | None]]], factor: float
) -> str:
    """Set every group's rate to ``factor`` times its rate in ``rates`` (taken before a
    rollback, which restores the optimizers' older rates with their states), and scale the
    schedulers' bases by ``factor``; what changed, in words."""
    changes = []
    for name, optimizer, groups in zip("GD", _optimizers(engine), rates, strict=True):
        for group, (lr, initial) in zip(optimizer.param_groups, groups, strict=True):
            group["lr"] = lr * factor
            if initial is not None:
                group["initial_lr"] = initial * factor
        _scheduler_bases(engine, optimizer, factor)
        changes.append(f"{name} {groups[0][0]:.3g} -> {optimizer.param_groups[0]['lr']:.3g}")
    return ", ".join(changes)


def raise_instance_noise(engine: GANEngine) -> str:
    """Double the instance noise of the run, or switch it on (sigma 0.1, annealed to 0 at the
    run's last iteration) when it has none."""
    from gan_tricks.tricks import InstanceNoise

    noise = next((t for t in engine.tricks if isinstance(t, InstanceNoise)), None)
    if noise is not None:
        noise.boost(2.0)
        return f"doubled the instance noise (sigma now {noise.current_sigma:.3g})"
    anneal = engine.max_steps if engine.max_steps else None
    schedule = "linear" if anneal else "constant"
    noise = InstanceNoise(sigma=0.1, anneal_steps=anneal, schedule=schedule)
    noise.step = engine.iteration
    engine.add_trick(noise)
    return f"switched instance noise on (sigma {noise.current_sigma:.3g}, {schedule})"


def add_label_smoothing(engine: GANEngine) -> str:
    """Switch one-sided label smoothing on (real targets 0.9), unless labels are smoothed."""
    from gan_tricks.tricks import LabelSmoothing

    if any(isinstance(t, LabelSmoothing) for t in engine.tricks):
        return "label smoothing was already on: nothing changed"
    engine.add_trick(LabelSmoothing(one_sided=True))
    return "switched one-sided label smoothing on (real targets 0.9)"


REMEDIES: dict[str, Callable[[GANEngine], str]] = {
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

    def maybe_take(self, engine: GANEngine) -> None:
        step = engine.iteration
        if step % self.every == 0 and (not self.kept or self.kept[-1][0] != step):
            self.take(engine)

    def take(self, engine: GANEngine) -> None:
        """Keep the state of now (``engine.iteration``)."""
        state = {
            "module": copy.deepcopy(engine.networks.state_dict()),
            "optimizers": [copy.deepcopy(o.state_dict()) for o in _optimizers(engine)],
        }
        self.kept.append((engine.iteration, state))

    def restore(self, engine: GANEngine) -> int | None:
        """Load the older snapshot; the step it was taken at, or None if there is none."""
        if not self.kept:
            return None
        step, state = self.kept[0]
        engine.networks.load_state_dict(state["module"])
        for optimizer, saved in zip(_optimizers(engine), state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        self.kept.clear()
        self.kept.append((step, state))
        return step


def _optimizers(engine: GANEngine) -> list:
    return [engine.g_optimizer, engine.d_optimizer]
