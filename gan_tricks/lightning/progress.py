"""A progress bar in iterations toward ``max_steps``, for the ``gan-tricks fit`` console."""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """One bar over the whole run: iterations (G steps) done of ``max_steps``, their rate and
    the time left, with the losses beside them.

    Lightning's bar counts the batches of each epoch, and a GAN recipe's epochs are a data
    module's artefact (``batches_per_epoch``), so its "Epoch 2: 500/500" says nothing about a
    run of ``max_steps`` iterations. A resumed run starts the bar where it stopped.
    """

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        bar = self.train_progress_bar
        bar.total = trainer.max_steps if trainer.max_steps > 0 else None
        bar.initial = bar.n = trainer.global_step
        bar.set_description("Training")

    def on_train_epoch_start(self, trainer, *_: Any) -> None:
        """The bar runs across epochs: nothing to reset."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        bar = self.train_progress_bar
        done = trainer.global_step
        if bar is None or bar.disable or self.refresh_rate == 0:
            return
        if done % self.refresh_rate == 0 or done == bar.total:
            bar.n = done
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)  # the logger's version (a W&B run id): not progress
        return metrics
