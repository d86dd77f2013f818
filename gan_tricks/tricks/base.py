"""The protocol between the adversarial step and the tricks that plug into it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import pytorch_lightning as pl
from torch import Tensor

if TYPE_CHECKING:
    from gan_tricks.module import GANModule

PHASES = ("d", "g")

# Where a trick's transforms run among the others (lower runs first), whatever the order the
# recipe lists the callbacks in: replay mixes old fakes into G's raw output, augmentation then
# sees real and fake alike, noise goes on top, and packing, which changes the batch's shape,
# comes last.
ORDER_REPLAY = -20
ORDER_AUGMENT = -10
ORDER_DEFAULT = 0
ORDER_PACKING = 100


class Trick(pl.Callback):
    """A stability trick: a Lightning callback that answers the adversarial step's questions.

    ``GANModule`` calls every trick at every hook point below, in the order the callbacks
    were given, and never asks whether a trick is on; a trick overrides the points it cares
    about and inherits a no-op for the rest. ``phase`` is ``"d"`` in a discriminator step and
    ``"g"`` in a generator step, so a trick can act on what D sees in one step or both
    (DiffAugment: both; experience replay: D only).

    The order of one training iteration::

        while more D steps are wanted (n_critic of the module, or wants_more_d_steps):
            real, fake = transform_real(real, "d"), transform_fake(G(z), "d")
            real_t, fake_t = targets(real_t, fake_t)
            loss_d = loss.d(D(real), D(fake), real_t, fake_t) + sum(d_penalty(...))
            step D; after_d_step()
        loss_g = loss.g(D(transform_fake(G(z), "g"))) + sum(g_penalty(...))
        step G; after_g_step()

    Like every Lightning callback, a trick keeps its own state and saves it through
    ``state_dict`` / ``load_state_dict`` so that checkpoints resume it.

    Two more points run once, before training: ``configure_networks`` changes the networks'
    structure (spectral norm, an EMA copy of G) before the optimizers are built, a checkpoint
    is restored or a finished run is loaded for sampling; ``check_compatibility`` sees every
    other trick and raises ``ConfigError`` with one sentence when a combination cannot work.
    """

    order: ClassVar[int] = ORDER_DEFAULT

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Lightning calls ``setup`` before it builds the optimizers or restores a checkpoint:
        # the one moment a structural change can happen.
        self.configure_networks(pl_module)

    @property
    def samples_per_input(self) -> int:
        """How many samples make one input of D (packing: m; else 1). A trick with more than 1
        changes the shape of what D sees, so every other reading of D (``GANModule.judge``)
        applies its transforms too, where it skips the random ones."""
        return 1

    def configure_networks(self, module: GANModule) -> None:
        """Change the networks' structure before training or loading (spectral norm).

        Must be idempotent: a second ``fit`` on the same module calls it again.
        """

    def check_compatibility(self, module: GANModule, tricks: list[Trick]) -> None:
        """Raise ``ConfigError`` (one sentence) if this trick cannot work with the others."""

    def wants_more_d_steps(self, module: GANModule, d_steps_done: int, d_loss: Tensor) -> bool:
        """Ask for another D step before the G step (e.g. train D more, adaptively)."""
        return False

    def transform_real(self, module: GANModule, real: Tensor, phase: str) -> Tensor:
        """Change the real batch before D sees it (augmentation, noise, packing)."""
        return real

    def transform_fake(self, module: GANModule, fake: Tensor, phase: str) -> Tensor:
        """Change the fake batch before D sees it (augmentation, noise, packing, replay)."""
        return fake

    def targets(
        self, module: GANModule, real_target: Tensor, fake_target: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Change D's targets, shaped like its logits (soft labels, flipped labels)."""
        return real_target, fake_target

    def d_penalty(
        self,
        module: GANModule,
        real: Tensor,
        fake: Tensor,
        real_logits: Tensor,
        fake_logits: Tensor,
    ) -> Tensor | None:
        """An extra term of D's loss (gradient penalty, R1, LeCam); None adds nothing."""
        return None

    def g_penalty(self, module: GANModule, fake: Tensor, fake_logits: Tensor) -> Tensor | None:
        """An extra term of G's loss; None adds nothing."""
        return None

    def after_d_step(self, module: GANModule) -> None:
        """Called after each D optimizer step (weight clipping)."""

    def after_g_step(self, module: GANModule) -> None:
        """Called after each G optimizer step (EMA of G)."""
