"""The protocol between the adversarial step and the tricks that plug into it."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from gan_tricks.engine.context import PHASES, NetworkHolder, StepContext
from gan_tricks.engine.signals import StepSignals

__all__ = ["ORDER_AUGMENT", "ORDER_DEFAULT", "ORDER_PACKING", "ORDER_REPLAY", "PHASES", "Trick"]

# Where a trick's transforms run among the others (lower runs first), whatever the order the
# recipe lists them in: replay mixes old fakes into G's raw output, augmentation then sees
# real and fake alike, noise goes on top, and packing, which changes the batch's shape, comes
# last.
ORDER_REPLAY = -20
ORDER_AUGMENT = -10
ORDER_DEFAULT = 0
ORDER_PACKING = 100


class Trick:
    """A stability trick: an object that answers the adversarial step's questions.

    The engine (:class:`~gan_tricks.engine.GANEngine`, which the Lightning adapter drives
    too) calls every trick at every hook point below and never asks whether a trick is on; a
    trick overrides the points it cares about and inherits a no-op for the rest. Each hook
    gets the :class:`~gan_tricks.engine.StepContext`: ``ctx.phase`` is ``"d"`` in a
    discriminator step and ``"g"`` in the generator step, so a trick can act on what D sees in
    one step or both (DiffAugment: both; experience replay: D only).

    The order of one training iteration::

        while more D steps are wanted (n_critic, or wants_more_d_steps):
            real, fake = transform_real(ctx, real), transform_fake(ctx, G(z))
            real_t, fake_t = targets(ctx, real_t, fake_t)
            loss_d = loss.d(D(real), D(fake), real_t, fake_t) + sum(d_penalty(ctx))
            step D; after_d_step(ctx)
        loss_g = loss.g(D(transform_fake(ctx, G(z)))) + sum(g_penalty(ctx))
        step G; after_g_step(ctx)
        observe(ctx, signals)

    Three points run outside the iteration: ``configure_networks`` changes the networks'
    structure (spectral norm, an EMA copy of G) when the engine is built, before optimizers
    are made or a checkpoint is loaded; ``check_compatibility`` sees every other trick and
    raises ``ConfigError`` with one sentence when a combination cannot work; ``start`` and
    ``close`` bracket a run (a schedule's length, hooks on G's layers).

    A trick keeps its own state and saves it through ``state_dict`` / ``load_state_dict``,
    so one call of the engine's ``state_dict`` checkpoints every trick.
    """

    order: ClassVar[int] = ORDER_DEFAULT
    # Tricks whose network change copies another's result (G's moving average copies G once
    # spectral norm reshaped it) configure later.
    configure_order: ClassVar[int] = 0

    @property
    def samples_per_input(self) -> int:
        """How many samples make one input of D (packing: m; else 1). A trick with more than 1
        changes the shape of what D sees, so every other reading of D (``GANEngine.judge``)
        applies its transforms too, where it skips the random ones."""
        return 1

    # ------------------------------------------------------------------ outside the step
    def configure_networks(self, networks: NetworkHolder, ctx: StepContext | None = None) -> None:
        """Change the networks' structure before training or loading (spectral norm).

        The engine calls it once it is built, with its context: only what is known then is
        set (``ctx.latent``, ``ctx.loss``, ``ctx.n_critic``; no optimizers, often no data).
        A direct call may leave ``ctx`` out. Must be idempotent: building a second engine on
        the same networks calls it again.
        """

    def check_compatibility(self, ctx: StepContext, tricks: list[Trick]) -> None:
        """Raise ``ConfigError`` (one sentence) if this trick cannot work with the others."""

    def start(self, ctx: StepContext) -> None:
        """A run starts (or resumes at ``ctx.step``); the optimizers exist."""

    def close(self, ctx: StepContext) -> None:
        """A run ends, normally or not: undo what ``start`` installed."""

    # ------------------------------------------------------------------ the step
    def wants_more_d_steps(self, ctx: StepContext, d_steps_done: int, d_loss: Tensor) -> bool:
        """Ask for another D step before the G step (e.g. train D more, adaptively)."""
        return False

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        """Change the real batch before D sees it (augmentation, noise, packing)."""
        return real

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        """Change the fake batch before D sees it (augmentation, noise, packing, replay)."""
        return fake

    def targets(
        self, ctx: StepContext, real_target: Tensor, fake_target: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Change D's targets, shaped like its logits (soft labels, flipped labels)."""
        return real_target, fake_target

    def d_penalty(self, ctx: StepContext) -> Tensor | None:
        """An extra term of D's loss (gradient penalty, R1, LeCam), from ``ctx.real``,
        ``ctx.fake``, ``ctx.real_logits`` and ``ctx.fake_logits``; None adds nothing."""
        return None

    def g_penalty(self, ctx: StepContext) -> Tensor | None:
        """An extra term of G's loss, from ``ctx.fake`` / ``ctx.fake_logits`` (as D saw them)
        and ``ctx.z`` / ``ctx.g_output``; None adds nothing."""
        return None

    def after_d_step(self, ctx: StepContext) -> None:
        """Called after each D optimizer step (weight clipping); ``ctx.real_logits`` are
        still the step's."""

    def after_g_step(self, ctx: StepContext) -> None:
        """Called after each G optimizer step (EMA of G)."""

    def observe(self, ctx: StepContext, signals: StepSignals) -> None:
        """Read the finished iteration's signals; for tricks that only watch (an adaptive
        probability's statistics, LeCam's anchors, a schedule's logged value)."""

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """What the trick's future depends on; a stateless trick has none."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s result."""
