"""What a run leaves behind and how a checkpoint is brought back: config, pictures, samples."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from jsonargparse import ArgumentParser
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor

from gan_tricks import plotting
from gan_tricks.checkpointing import load_checkpoint_file
from gan_tricks.data.base import GANDataModule
from gan_tricks.errors import ConfigError
from gan_tricks.lightning import GANModule
from gan_tricks.plotting import save_samples
from gan_tricks.trust import check_allowed_classes

# Where a checkpoint keeps the resolved model and data config, to rebuild them for sampling.
RUN_CONFIG_KEY = "gan_tricks_config"


class EmbedRunConfig(pl.Callback):
    """Writes the run's resolved model and data config into every checkpoint."""

    def __init__(self, run_config: dict[str, Any]) -> None:
        self.run_config = run_config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_CONFIG_KEY] = self.run_config


class LastCheckpoint(Checkpoint):
    """``checkpoints/last.ckpt`` every ``every_n_train_steps`` iterations and once more when
    training ends: the one checkpoint a run keeps, which ``--ckpt_path last`` resumes.

    Written with ``trainer.save_checkpoint``, so through the trainer's checkpoint I/O:
    ``gan-tricks fit`` gives it :class:`~gan_tricks.checkpointing.AtomicCheckpointIO`, which
    writes atomically and refuses weights holding NaN.
    """

    def __init__(self, dirpath: Path | str, every_n_train_steps: int = 500) -> None:
        if every_n_train_steps < 1:
            raise ConfigError(
                f"checkpoints need every_n_train_steps >= 1 (got {every_n_train_steps})."
            )
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.saved_step: int | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / LAST_CHECKPOINT

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_train_steps == 0:
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step > 0 and self.saved_step != trainer.global_step:
            self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # SIGTERM (docker stop, SLURM, Kubernetes): Lightning stops once the iteration in
        # flight has ended, so the state is whole; keep it, or up to every_n_train_steps
        # iterations are lost.
        stopped = isinstance(exception, SIGTERMException)
        if stopped and trainer.global_step > 0 and self.saved_step != trainer.global_step:
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` now (every rank calls it; rank 0 writes)."""
        trainer.save_checkpoint(self.path, weights_only=False)  # optimizers and all
        self.saved_step = trainer.global_step


LAST_CHECKPOINT = "last.ckpt"
SNAPSHOT_FOLDER = "samples"


class RunArtifacts(pl.Callback):
    """Keeps a light history of the step signals and, at the end, draws two pictures.

    ``samples.png`` (a scatter over the true modes for 2D data, a grid for images),
    ``training.png`` (losses, D's outputs and gradient norms over the run) and ``timing.json``
    (iterations and training seconds, start-up and snapshots excluded, so tricks' costs
    compare per step), in the run folder; and ``snapshots`` pictures of samples at evenly
    spaced iterations, ``samples/step_NNNNNNN.png``, which ``gan-tricks report`` shows in order.
    With a W&B logger, each snapshot also goes to W&B as an image (``samples``) with
    histograms of D's logits on those samples and on real ones (``d_output/fake``,
    ``d_output/real``).
    """

    def __init__(self, run_dir: Path | str, every_n_steps: int = 10, snapshots: int = 8) -> None:
        self.run_dir = Path(run_dir)
        self.every_n_steps = every_n_steps
        self.snapshots = snapshots
        self.history: list[dict[str, float]] = []
        self._steps_at_start = 0
        self._started: float | None = None
        self._snapshot_seconds = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()
        self._steps_at_start = trainer.global_step
        self._snapshot_seconds = 0.0

    def on_train_end(self, trainer, pl_module) -> None:
        if self._started is None:
            return
        seconds = time.perf_counter() - self._started - self._snapshot_seconds
        steps = trainer.global_step - self._steps_at_start
        self._started = None
        if trainer.is_global_zero:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            timing = {
                "steps": steps,
                "train_seconds": round(seconds, 3),
                "seconds_per_step": round(seconds / max(steps, 1), 6),
            }
            (self.run_dir / "timing.json").write_text(json.dumps(timing) + "\n")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0 and getattr(pl_module, "signals", None) is not None:
            row = {"step": float(step)}
            row.update(pl_module.signals.floats())
            self.history.append(row)
        if self.snapshots and trainer.max_steps > 0:
            interval = max(1, trainer.max_steps // self.snapshots)
            if step % interval == 0 and step < trainer.max_steps:  # the end has samples.png
                start = time.perf_counter()
                self._save_snapshot(trainer, pl_module, step)
                self._snapshot_seconds += time.perf_counter() - start

    @rank_zero_only
    def _save_snapshot(self, trainer, pl_module, step: int) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        samples = pl_module.sample(_default_picture_samples(datamodule), seed=0)
        picture = self.run_dir / SNAPSHOT_FOLDER / f"step_{step:07d}.png"
        save_samples(samples, picture, datamodule)
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if wandb_loggers:
            media = _wandb_media(pl_module, datamodule, samples, picture, step)
            for logger in wandb_loggers:
                logger.log_metrics(media, step=step)

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        datamodule = getattr(trainer, "datamodule", None)
        samples = pl_module.sample(_default_picture_samples(datamodule), seed=0)
        save_samples(samples, self.run_dir / "samples.png", datamodule)
        if self.history:
            plotting.plot_training(self.history, self.run_dir / "training.png")

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))


def _wandb_media(module: GANModule, datamodule, samples: Tensor, picture: Path, step: int):
    """The snapshot for W&B: the sample picture, and histograms of D's logits on those samples
    and on as many real ones (read by ``GANModule.judge``: no augmentation, eval mode)."""
    import wandb

    media = {
        "samples": wandb.Image(str(picture), caption=f"step {step}"),
        "d_output/fake": wandb.Histogram(module.judge(samples).float().cpu().numpy()),
    }
    if isinstance(datamodule, GANDataModule):
        real = datamodule.real_samples(len(samples), seed=step)
        media["d_output/real"] = wandb.Histogram(module.judge(real).float().cpu().numpy())
    return media


def _default_picture_samples(datamodule) -> int:
    return datamodule.picture_samples if isinstance(datamodule, GANDataModule) else 64


def evaluate_samples(
    module: GANModule,
    datamodule,
    num_samples: int | None = None,
    seed: int = 0,
    inception_weights: str | Path | None = None,
    feature_metrics: bool = True,
) -> dict[str, Any]:
    """The metrics that apply to the run's data, with their protocol's sample count.

    The data module says which: :meth:`GANDataModule.evaluate` (2D mixtures: mode coverage,
    PacGAN's protocol; stacked digits: modes of 1,000 and reverse KL on 26,000 samples,
    Stacked MNIST's; digits: classes of 10 and reverse KL, and FID, KID, precision / recall
    and density / coverage in the digit feature space; other image data: the same in
    Inception's feature space when ``inception_weights`` (the path of torch-fidelity's
    Inception-v3 weights) is given; every image data set: the diversity ratio). Samples come
    from the sampling generator (G's moving average when the run kept one), with latent codes
    from ``seed``. ``feature_metrics=False`` skips the feature-space metrics (KID alone costs
    seconds on a CPU). A data module that is not a :class:`GANDataModule` gets the sample
    count alone.
    """
    start = time.perf_counter()
    metrics: dict[str, Any] = {"data": type(datamodule).__name__ if datamodule else None}
    if isinstance(datamodule, GANDataModule):
        samples = module.sample(num_samples or datamodule.eval_samples, seed=seed)
        weights = None if inception_weights is None else str(inception_weights)
        metrics.update(datamodule.evaluate(samples, seed, feature_metrics, weights))
    else:
        samples = module.sample(num_samples or GANDataModule.eval_samples, seed=seed)
        metrics["num_samples"] = len(samples)
    metrics["seed"] = seed
    metrics["wall_time_s"] = round(time.perf_counter() - start, 3)
    return metrics


def load_run(
    checkpoint_path: str | Path, allow: Iterable[str] = ()
) -> tuple[GANModule, pl.LightningDataModule | None]:
    """The GAN module (weights loaded, eval mode) and data module of a ``gan-tricks fit`` run.

    Only classes of the package (and torch's optimizers) are imported to rebuild it, plus those
    in ``allow`` and ``GAN_TRICKS_ALLOW_CLASSES`` (:mod:`gan_tricks.trust`): a checkpoint
    loads without running pickled code, and must not make us import what it names either.
    """
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint_file(path)
    config = checkpoint.get(RUN_CONFIG_KEY)
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise ConfigError(
            f"{path} holds no gan-tricks run config; give a checkpoint written by gan-tricks fit."
        )
    check_allowed_classes({k: config.get(k) for k in ("model", "data")}, str(path), allow)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(GANModule, "model", fail_untyped=False)
    parser.add_subclass_arguments(pl.LightningDataModule, "data", required=False)
    settings = {key: config[key] for key in ("model", "data") if config.get(key)}
    init = parser.instantiate_classes(parser.parse_object(settings))
    # Its tricks changed the networks' structure (spectral norm, G's moving average) when it
    # was built, so the weights' keys fit.
    module: GANModule = init.model
    module.load_state_dict(checkpoint["state_dict"])
    module.eval()
    return module, init.get("data")
