"""The update schedule as tricks: two time-scale learning rates, D steps per G step, and a
schedule for any scalar setting of an optimizer or a trick."""

from __future__ import annotations

import re
from typing import Any

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.schedule import (
    SCHEDULE_KINDS,
    ScheduleKind,
    scheduled_value,
    set_learning_rates,
    wants_more_critic_steps,
)
from gan_tricks.tricks.base import Trick

__all__ = ["TTUR", "NCritic", "Schedule"]

# "g_optimizer.lr", "d_optimizer.betas[1]", "tricks.GradientPenalty_2.weight"
_OPTIMIZER_TARGET = re.compile(r"(g|d)_optimizer\.(\w+)(?:\[(\d+)\])?")
_TRICK_TARGET = re.compile(r"tricks\.(\w+)\.(\w+)")


class TTUR(Trick):
    """The two time-scale update rule: G and D learn at their own rates.

    Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium" (the SAGAN/BigGAN setting is G 1e-4, D 4e-4). Sets the learning rates of
    whatever optimizers the run built, when it starts, and moves any LR scheduler's
    ``base_lrs`` with them (``gan_tricks.functional.schedule.set_learning_rates``). On resume
    the checkpoint's optimizer and scheduler states, restored after this, hold the same rates.
    """

    def __init__(self, g_lr: float = 1e-4, d_lr: float = 4e-4) -> None:
        for name, lr in (("g_lr", g_lr), ("d_lr", d_lr)):
            if not lr > 0:
                raise ConfigError(f"TTUR {name} must be > 0 (got {lr}).")
        self.g_lr = g_lr
        self.d_lr = d_lr

    def start(self, ctx: StepContext) -> None:
        set_learning_rates(ctx.g_optimizer, self.g_lr, ctx.schedulers)
        set_learning_rates(ctx.d_optimizer, self.d_lr, ctx.schedulers)


class NCritic(Trick):
    """More D steps per G step: fixed (WGAN's 5 critic steps, Arjovsky et al. 2017) or adaptive
    ("train D more (sometimes)", ganhacks #14).

    Args:
        n: D steps per G step; in adaptive mode the cap when ``max_steps`` is not given.
        adaptive: instead of a fixed count, keep training D while its loss (penalties
            included) is above ``threshold``, at least once and at most ``max_steps`` times.
        threshold: the D loss above which D is trained again (adaptive only); for the
            non-saturating loss, 2 log 2 = 1.39 is chance level.
        max_steps: the cap of the adaptive mode (default ``n``).

    The D steps of one iteration see that iteration's real batch, with fresh fakes each.
    The step's signals' ``d_steps`` records how many were taken.
    """

    def __init__(
        self,
        n: int = 5,
        adaptive: bool = False,
        threshold: float | None = None,
        max_steps: int | None = None,
    ) -> None:
        if n < 1:
            raise ConfigError(f"NCritic n must be at least 1 (got {n}).")
        if adaptive and threshold is None:
            raise ConfigError(
                "NCritic adaptive: true needs a threshold on D's loss; set threshold "
                "(e.g. 1.2 for the non-saturating loss)."
            )
        if not adaptive and (threshold is not None or max_steps is not None):
            raise ConfigError(
                "NCritic threshold and max_steps only apply to the adaptive mode; set "
                "adaptive: true or remove them."
            )
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"NCritic max_steps must be at least 1 (got {max_steps}).")
        self.n = n
        self.adaptive = adaptive
        self.threshold = threshold
        self.max_steps = max_steps

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        if not self.adaptive and ctx.n_critic not in (1, self.n):
            raise ConfigError(
                f"model.n_critic ({ctx.n_critic}) and NCritic n ({self.n}) disagree; "
                "set the number of D steps in one place."
            )

    def wants_more_d_steps(self, ctx: StepContext, d_steps_done: int, d_loss: Tensor) -> bool:
        return wants_more_critic_steps(d_steps_done, d_loss, self.n, self.threshold, self.max_steps)


class Schedule(Trick):
    """Any scalar setting of an optimizer or of a trick, following a linear or cosine schedule
    over iterations (:func:`~gan_tricks.functional.schedule.scheduled_value`).

    R3GAN (Huang et al. 2024) anneals its learning rate, Adam's beta2 (0.9 -> 0.99), gamma,
    the EMA and the augmentation probability this way; one ``Schedule`` per setting::

        - class_path: gan_tricks.tricks.Schedule
          init_args: {target: "d_optimizer.betas[1]", start: 0.9, end: 0.99}

    The value of iteration ``i`` is set before it runs (at the start, then after each G
    step for the next), so a schedule is a function of the iteration alone: a resumed run
    sets the same values, and the value is logged as ``schedule/<target>``.

    Args:
        target: ``g_optimizer.KEY`` or ``d_optimizer.KEY`` (a key of the optimizer's
            parameter groups: ``lr``, ``weight_decay``, or ``betas[0]`` / ``betas[1]``), or
            ``tricks.NAME.ATTRIBUTE`` for a trick of the run (its class name, numbered as in
            the logs when it repeats: ``tricks.GradientPenalty_2.weight``,
            ``tricks.GeneratorEMA.decay``, ``tricks.InstanceNoise.sigma``).
        start, end: the values at ``begin`` and at ``begin + steps``.
        kind: ``cosine`` (default) or ``linear``.
        steps: iterations from start to end (default: the run's ``max_steps``, so a resume
            that trains longer also stretches the schedule; give ``steps`` to fix it).
        begin: the iteration where the change starts.
    """

    def __init__(
        self,
        target: str,
        start: float,
        end: float,
        kind: ScheduleKind = "cosine",
        steps: int | None = None,
        begin: int = 0,
    ) -> None:
        if not (_OPTIMIZER_TARGET.fullmatch(target) or _TRICK_TARGET.fullmatch(target)):
            raise ConfigError(
                f"Schedule target must be g_optimizer.KEY, d_optimizer.KEY (such as lr or "
                f"betas[1]) or tricks.NAME.ATTRIBUTE (got {target!r})."
            )
        if kind not in SCHEDULE_KINDS:
            raise ConfigError(
                f"Schedule kind must be one of {', '.join(SCHEDULE_KINDS)} (got {kind!r})."
            )
        if steps is not None and (isinstance(steps, bool) or steps < 1):
            raise ConfigError(f"Schedule steps must be an integer >= 1 (got {steps!r}).")
        if isinstance(begin, bool) or begin < 0:
            raise ConfigError(f"Schedule begin must be an integer >= 0 (got {begin!r}).")
        self.target = target
        self.start_value = float(start)
        self.end_value = float(end)
        self.kind = kind
        self.steps = steps
        self.begin = begin
        self.value: float | None = None  # set for the iteration about to run
        on_optimizer = _OPTIMIZER_TARGET.fullmatch(target)
        # ("g" | "d", group key, index or None) for an optimizer; (trick name, attribute).
        self._optimizer_target = on_optimizer.groups() if on_optimizer else None
        self._trick_target = None if on_optimizer else _TRICK_TARGET.fullmatch(target).groups()
        self._trick: Trick | None = None

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        if self.steps is None and not ctx.max_steps:
            raise ConfigError(
                f"Schedule of {self.target} needs steps when the run has no max_steps."
            )
        if self._trick_target is not None:
            from gan_tricks.engine.adversarial import unique_names

            name, attribute = self._trick_target
            named = unique_names(tricks)
            trick = named.get(name)
            if trick is None:
                raise ConfigError(
                    f"Schedule target {self.target} names no trick of this run; its tricks "
                    f"are {', '.join(n for n, t in named.items() if t is not self) or 'none'}."
                )
            if not isinstance(getattr(trick, attribute, None), int | float):
                raise ConfigError(
                    f"Schedule target {self.target}: {name} has no number {attribute!r}."
                )
            self._trick = trick

    def start(self, ctx: StepContext) -> None:
        if self._optimizer_target is not None and self._optimizer_target[1] == "lr":
            side = self._optimizer_target[0]
            optimizer = ctx.g_optimizer if side == "g" else ctx.d_optimizer
            if any(getattr(s, "optimizer", None) is optimizer for s in ctx.schedulers):
                raise ConfigError(
                    f"Schedule of {self.target} and the run's {side}_scheduler both set that "
                    "learning rate; keep one of them."
                )
        self._apply(ctx, ctx.step)

    def after_g_step(self, ctx: StepContext) -> None:
        self._apply(ctx, ctx.step + 1)  # the next iteration's value

    def observe(self, ctx: StepContext, signals: Any) -> None:
        # The value this iteration used: the schedule is a function of the iteration alone,
        # which is also why it has no state of its own to checkpoint.
        ctx.log(f"schedule/{self.target}", self.value_at(ctx.step, ctx.max_steps))

    def value_at(self, step: int, max_steps: int | None) -> float:
        steps = self.steps or max_steps or 1
        return scheduled_value(step, self.start_value, self.end_value, steps, self.kind, self.begin)

    def _apply(self, ctx: StepContext, step: int) -> None:
        self.value = self.value_at(step, ctx.max_steps)
        if self._optimizer_target is None:
            setattr(self._trick, self._trick_target[1], self.value)
            return
        side, key, index = self._optimizer_target
        optimizer = ctx.g_optimizer if side == "g" else ctx.d_optimizer
        for group in optimizer.param_groups:
            if key not in group:
                raise ConfigError(
                    f"Schedule target {self.target}: the optimizer has no setting {key!r}."
                )
            if index is None:
                group[key] = self.value
            else:
                values = list(group[key])
                values[int(index)] = self.value
                group[key] = tuple(values)
