"""A moving average of G to sample from: a thin trick over ``functional.ema``."""

from __future__ import annotations

import copy
from typing import ClassVar

from torch import nn

from gan_tricks.engine.context import NetworkHolder, StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.functional.ema import ema_decay_with_rampup, ema_update
from gan_tricks.tricks.base import Trick


def _same_structure(first: nn.Module, second: nn.Module) -> bool:
    first_state, second_state = first.state_dict(), second.state_dict()
    return first_state.keys() == second_state.keys() and all(
        first_state[key].shape == second_state[key].shape for key in first_state
    )


class GeneratorEMA(Trick):
    """Sample from an exponential moving average of G (Yazıcı et al. 2019, "The unusual
    effectiveness of averaging in GAN training"; Karras et al. 2018 ProGAN, 2019 StyleGAN).

    ``configure_networks`` puts a frozen copy of G in ``networks.generator_ema`` (after the
    tricks that reshape G, such as spectral norm: ``configure_order`` 10); after every G
    step it moves towards G by :func:`~gan_tricks.functional.ema.ema_update` with decay
    :func:`~gan_tricks.functional.ema.ema_decay_with_rampup` (buffers such as BatchNorm's
    running statistics are copied). Until ``start_step`` G steps are done it simply copies G.
    Training is unchanged; ``engine.sample`` / ``module.sample`` (hence ``gan-tricks
    sample``/``evaluate`` and the run's pictures) use the average. Its weights are part of the
    networks' state dict, so checkpoints carry them.

    Why not Lightning's ``EMAWeightAveraging``: its ``AveragedModel`` wraps the whole
    LightningModule, so it would average D as well, and it swaps the averaged weights into
    the module itself (at validation, at the end of training, and in the checkpoint's
    ``state_dict``), so the G that keeps training and the G that samples could not coexist;
    limiting it to G would mean overriding nearly every method it has.

    Args:
        decay: the average's decay per G step (0.999: a horizon of about 1,000 steps).
        start_step: G steps during which the average only copies G (skip the noisy start).
        rampup: warm-up constant of the decay, min(decay, (1 + k) / (rampup + k)) at the k-th
            update; None for a fixed decay.
    """

    # The copy must have G's final structure: configured after the tricks that reshape G
    # (spectral norm), whatever their place in the list.
    configure_order: ClassVar[int] = 10

    def __init__(
        self, decay: float = 0.999, start_step: int = 0, rampup: float | None = 10.0
    ) -> None:
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"GeneratorEMA decay must be in [0, 1) (got {decay}).")
        if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
            raise ConfigError(
                f"GeneratorEMA start_step must be an integer >= 0 (got {start_step})."
            )
        if rampup is not None and rampup < 1:
            raise ConfigError(f"GeneratorEMA rampup must be >= 1 or null (got {rampup}).")
        self.decay = decay
        self.start_step = start_step
        self.rampup = rampup

    def configure_networks(self, networks: NetworkHolder, ctx: StepContext | None = None) -> None:
        """Give the networks a frozen copy of G, unless they hold one of G's structure already."""
        current = getattr(networks, "generator_ema", None)
        if current is not None and _same_structure(current, networks.generator):
            return
        average = copy.deepcopy(networks.generator)
        average.requires_grad_(False)
        networks.generator_ema = average

    def after_g_step(self, ctx: StepContext) -> None:
        if ctx.generator_ema is None:
            self.configure_networks(ctx.networks)
        # ctx.step is this iteration's index: the G steps done before the one that just ended.
        updates_done = ctx.step - self.start_step
        if updates_done < 0:
            decay = 0.0
        else:
            decay = ema_decay_with_rampup(updates_done, self.decay, self.rampup)
        ema_update(ctx.generator_ema, ctx.generator, decay)
