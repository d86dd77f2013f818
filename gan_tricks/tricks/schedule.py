"""The update schedule as tricks: two time-scale learning rates and D steps per G step."""

from __future__ import annotations

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.schedule import set_learning_rates, wants_more_critic_steps
from gan_tricks.tricks.base import Trick

__all__ = ["TTUR", "NCritic"]


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
