"""The update schedule of the two players: their learning rates, how many D steps per G step,
and any scalar setting following a schedule over iterations."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal, get_args

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from gan_tricks.errors import ConfigError

__all__ = [
    "SCHEDULE_KINDS",
    "DelayedLinearDecay",
    "scheduled_value",
    "set_learning_rates",
    "wants_more_critic_steps",
]

ScheduleKind = Literal["linear", "cosine"]
SCHEDULE_KINDS: tuple[ScheduleKind, ...] = get_args(ScheduleKind)


def scheduled_value(
    step: int, start: float, end: float, steps: int, kind: str = "cosine", begin: int = 0
) -> float:
    """A setting's value at iteration ``step``: ``start`` until ``begin``, then moving to
    ``end`` over ``steps`` iterations, and ``end`` after.

    ``linear``: ``start + (end - start) * t``; ``cosine``: ``end + (start - end) * (1 + cos(pi
    t)) / 2`` (Loshchilov & Hutter 2017's annealing, which R3GAN applies to its learning rate,
    Adam's beta2, gamma, the EMA and the augmentation probability), with ``t = (step - begin)
    / steps`` clamped to [0, 1].
    """
    if kind not in SCHEDULE_KINDS:
        raise ConfigError(
            f"a schedule's kind must be one of {', '.join(SCHEDULE_KINDS)} (got {kind!r})."
        )
    if steps < 1:
        raise ConfigError(f"a schedule needs steps >= 1 (got {steps}).")
    t = min(1.0, max(0.0, (step - begin) / steps))
    if kind == "linear":
        return start + (end - start) * t
    return end + (start - end) * (1.0 + math.cos(math.pi * t)) / 2.0


def set_learning_rates(optimizer: Optimizer, lr: float, schedulers: Iterable = ()) -> None:
    """Make ``lr`` the base learning rate of every parameter group of ``optimizer``, in place.

    Used for the two time-scale update rule (TTUR, Heusel et al. 2017, "GANs trained by a two
    time-scale update rule converge to a local Nash equilibrium"). A scheduler built on the
    old rate keeps its shape: the group's current rate is rescaled by ``lr / initial_lr``
    (so a warm-up that starts at 0 still starts at 0), ``initial_lr`` becomes ``lr``, and the
    ``base_lrs`` of those ``schedulers`` that drive this optimizer follow. Idempotent: a second
    call with the same ``lr`` changes nothing.
    """
    if not lr > 0:
        raise ConfigError(f"a learning rate must be > 0 (got {lr}).")
    for group in optimizer.param_groups:
        base = group.get("initial_lr", group["lr"])
        group["lr"] = group["lr"] * (lr / base) if base > 0 else lr
        if "initial_lr" in group:
            group["initial_lr"] = lr
    for scheduler in schedulers:
        if getattr(scheduler, "optimizer", None) is not optimizer:
            continue
        if hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr] * len(optimizer.param_groups)
        if hasattr(scheduler, "_last_lr"):
            scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def wants_more_critic_steps(
    d_steps_done: int,
    d_loss: float,
    n: int,
    threshold: float | None = None,
    max_steps: int | None = None,
) -> bool:
    """Whether D should take another step before G's ("train D more", ganhacks #14).

    Fixed (``threshold`` None): ``n`` D steps per G step, WGAN's critic schedule (Arjovsky et
    al. 2017, n = 5). Adaptive: keep training D while its loss is above ``threshold`` (ganhacks
    #14: "while lossD > A: train D"), at most ``max_steps`` (default ``n``) D steps; the one
    step already done is the minimum.
    """
    if threshold is None:
        return d_steps_done < n
    cap = n if max_steps is None else max_steps
    return d_steps_done < cap and float(d_loss) > threshold


class DelayedLinearDecay(LRScheduler):
    """Hold the learning rate for ``start`` iterations, then decay it linearly to ``end_factor``.

    The rate is ``base_lr`` until iteration ``start``, falls linearly to ``end_factor * base_lr``
    at ``total_iters`` and stays there. On the 2D mixtures the players circle the modes while
    the rate is high; letting both rates go to 0 at the end is what settles G *on* the modes
    (CycleGAN and pix2pix, Zhu et al. 2017 and Isola et al. 2017, hold the rate for half of
    training and decay it linearly to 0 over the other half). ``SequentialLR`` of ``ConstantLR`` and
    ``LinearLR`` does the same, but cannot be written in a YAML recipe.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_iters: int,
        start: int = 0,
        end_factor: float = 0.0,
        last_epoch: int = -1,
    ) -> None:
        if not 0 <= start < total_iters:
            raise ConfigError(
                f"DelayedLinearDecay needs 0 <= start < total_iters (got start={start}, "
                f"total_iters={total_iters})."
            )
        if not 0 <= end_factor <= 1:
            raise ConfigError(f"end_factor must be in [0, 1] (got {end_factor}).")
        self.total_iters = total_iters
        self.start = start
        self.end_factor = end_factor
        super().__init__(optimizer, last_epoch)

    def factor(self, iteration: int) -> float:
        """The multiplier of the base rate at ``iteration`` (0-based)."""
        progress = (iteration - self.start) / (self.total_iters - self.start)
        progress = min(max(progress, 0.0), 1.0)
        return 1.0 - (1.0 - self.end_factor) * progress

    def get_lr(self) -> list[float]:
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]
