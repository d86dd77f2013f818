"""Small helpers to test a trick on a tiny GAN in seconds.

A trick is only tested once it has run inside a real ``pl.Trainer`` fit: the hooks, their
order, the optimizers and checkpoints are all Lightning's. These helpers make such a fit cheap
enough for a unit test on a CPU (tiny MLPs or DCGANs, a few steps, no logger, checkpoints or
progress bar), and record what the trick did. The package's own tests use them; so can anyone
writing their own trick::

    from gan_tricks.testing import SignalHistory, fit_briefly, tiny_gan_module

    history = SignalHistory()
    fit_briefly(tiny_gan_module(loss="hinge", tricks=[MyTrick()]), 3, callbacks=[history])
    assert all(row["d_penalty/MyTrick"] > 0 for row in history.rows)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.engine import StepContext
from gan_tricks.functional.latent import Latent
from gan_tricks.lightning import GANModule
from gan_tricks.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_tricks.models.mlp import MLPDiscriminator, MLPGenerator
from gan_tricks.tricks.base import ORDER_DEFAULT, Trick

__all__ = [
    "BatchRecorder",
    "SeenBatch",
    "SignalHistory",
    "assert_logit_sees_the_batch",
    "fit_briefly",
    "random_points",
    "tiny_gan_module",
    "tiny_image_gan_module",
]


def assert_logit_sees_the_batch(discriminator: torch.nn.Module, samples: Tensor) -> Tensor:
    """Check that D's logit for sample 0 changes when the rest of the batch collapses onto it.

    A D with batch statistics (``MinibatchStdDev``, minibatch discrimination) must see a
    collapsed batch; a plain D must not. Also checks one logit per sample and a gradient for
    every parameter. Returns the logits of ``samples`` (at least 2 of them).
    """
    collapsed = samples.clone()
    collapsed[1:] = samples[:1]
    logits = discriminator(samples)
    assert logits.shape == (len(samples),), f"one logit per sample expected, got {logits.shape}"
    assert not torch.allclose(logits[0], discriminator(collapsed)[0]), (
        "the logit of sample 0 does not depend on the rest of the batch"
    )
    logits.sum().backward()
    assert all(p.grad is not None for p in discriminator.parameters()), "a parameter has no grad"
    return logits


def tiny_gan_module(
    *,
    width: int = 16,
    depth: int = 2,
    g_options: dict[str, Any] | None = None,
    d_options: dict[str, Any] | None = None,
    seed: int = 0,
    **overrides: Any,
) -> GANModule:
    """A ``GANModule`` for 2D points with tiny MLPs, the same networks on every call.

    Seeds torch's global RNG with ``seed``, then builds both default networks even when
    ``overrides`` replaces one of them, so that replacing D never changes G's initial weights
    (and the other way round); a fit that follows draws its data from the same seeded stream.

    Args:
        width, depth: of both MLPs.
        g_options: further arguments of the ``MLPGenerator`` (e.g. ``{"norm": "batch"}``).
        d_options: further arguments of the ``MLPDiscriminator`` (e.g. ``{"in_dim": 4}`` for a
            D that sees packs of two points).
        seed: for ``torch.manual_seed`` before the networks are built.
        **overrides: ``GANModule`` arguments (``loss``, ``n_critic``, ``discriminator``, ...).
    """
    torch.manual_seed(seed)
    defaults = dict(
        generator=MLPGenerator(
            **{"latent_dim": 2, "out_dim": 2, "width": width, "depth": depth, **(g_options or {})}
        ),
        discriminator=MLPDiscriminator(
            **{"in_dim": 2, "width": width, "depth": depth, **(d_options or {})}
        ),
        latent=Latent(dim=2),
    )
    return GANModule(**{**defaults, **overrides})


def tiny_image_gan_module(
    *,
    channels: int = 1,
    image_size: int = 8,
    width: int = 8,
    latent_dim: int = 8,
    g_options: dict[str, Any] | None = None,
    d_options: dict[str, Any] | None = None,
    seed: int = 0,
    **overrides: Any,
) -> GANModule:
    """A ``GANModule`` for ``channels x image_size x image_size`` images with tiny DCGANs.

    For the tricks that only act on images (augmentation, image packing, range checks). Seeds
    and builds its defaults like :func:`tiny_gan_module`; ``g_options`` / ``d_options`` go to
    ``DCGANGenerator`` / ``DCGANDiscriminator`` (e.g. ``{"out_activation": "sigmoid"}``, or
    ``{"channels": 6}`` for a D that sees packs of two RGB images).
    """
    torch.manual_seed(seed)
    shape = {"image_size": image_size, "channels": channels, "width": width}
    defaults = dict(
        generator=DCGANGenerator(**{"latent_dim": latent_dim, **shape, **(g_options or {})}),
        discriminator=DCGANDiscriminator(**{**shape, **(d_options or {})}),
        latent=Latent(dim=latent_dim),
    )
    return GANModule(**{**defaults, **overrides})


def random_points(batch_size: int = 16, batches: int = 8, dim: int = 2) -> DataLoader:
    """A loader of ``batches`` full batches of standard-normal points, drawn from torch's RNG.

    Real data for a fit that only checks what a trick does, not what G learns; ``drop_last``
    keeps every batch at ``batch_size``, so that tests can count samples exactly.
    """
    points = torch.randn(batch_size * batches, dim)
    return DataLoader(TensorDataset(points), batch_size=batch_size, drop_last=True)


def fit_briefly(
    module: GANModule,
    steps: int,
    callbacks: Iterable[pl.Callback] = (),
    *,
    data: DataLoader | pl.LightningDataModule | None = None,
    batch_size: int = 16,
    batches: int = 8,
    ckpt_path: str | Path | None = None,
    **trainer_options: Any,
) -> pl.Trainer:
    """Fit ``module`` for ``steps`` iterations (generator steps) on the CPU and return the trainer.

    No logger, checkpoint callback, progress bar or model summary: a test's fit leaves nothing
    behind and prints nothing. Call ``trainer.save_checkpoint`` to write a checkpoint yourself
    and pass it back as ``ckpt_path`` to test a resume.

    Args:
        module: e.g. from :func:`tiny_gan_module`.
        steps: ``max_steps`` of the trainer (``-1`` with ``max_epochs`` in ``trainer_options``).
        callbacks: Lightning callbacks, such as a :class:`SignalHistory` (the tricks and
            detectors under test belong to the module: ``tiny_gan_module(tricks=[...])``).
        data: a ``DataLoader`` or a ``LightningDataModule`` (which tricks that read
            ``trainer.datamodule`` need); by default :func:`random_points` with ``batch_size``
            and ``batches``, drawn when the fit starts.
        ckpt_path: a checkpoint to resume from, loaded with ``weights_only=True`` like every
            checkpoint of ``gan-tricks fit``: tensors and plain types only, no code runs.
        **trainer_options: further ``pl.Trainer`` arguments, which win over the defaults
            (e.g. ``accelerator="gpu", devices=1``).
    """
    options = {
        "max_steps": steps,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": list(callbacks),
        **trainer_options,
    }
    trainer = pl.Trainer(**options)
    if data is None:
        data = random_points(batch_size, batches)
    if isinstance(data, pl.LightningDataModule):
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    else:
        trainer.fit(module, train_dataloaders=data, ckpt_path=ckpt_path, weights_only=True)
    return trainer


class SignalHistory(pl.Callback):
    """The module's signals (``GANModule.signals``: losses, penalties, D steps, ...) after every
    iteration.

    ``module.signals`` only holds the last iteration's values; a test of a schedule, a lazy
    penalty or an adaptive number of D steps needs each iteration's. ``rows[i]`` is a copy of the
    signals after iteration ``i`` (detached scalar tensors).
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Tensor]] = []

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.rows.append(pl_module.signals.as_dict())

    def series(self, name: str) -> list[float]:
        """One signal's value after every iteration, e.g. ``series("d_steps")``."""
        return [float(row[name]) for row in self.rows]


class SeenBatch(NamedTuple):
    """One batch on its way to D, as :class:`BatchRecorder` saw it."""

    step: int  # ctx.step: the iteration (generator steps done before it)
    phase: str  # "d" in a D step, "g" in the G step
    side: str  # "real" or "fake"
    batch: Tensor  # a detached copy


class BatchRecorder(Trick):
    """Records every batch D is about to see, at its own place in the trick order.

    Tricks change D's batches in ``order`` (replay, then augmentation, noise, packing); two
    recorders, one ordered before a trick and one after it, show exactly what that trick
    changed, whatever else runs. ``batches`` lists a :class:`SeenBatch` per hook call, real
    and fake in the order the module asked for them.
    """

    def __init__(self, order: int = ORDER_DEFAULT) -> None:
        self.order = order
        self.batches: list[SeenBatch] = []

    def transform_real(self, ctx: StepContext, real: Tensor) -> Tensor:
        self.batches.append(SeenBatch(ctx.step, ctx.phase, "real", real.detach().clone()))
        return real

    def transform_fake(self, ctx: StepContext, fake: Tensor) -> Tensor:
        self.batches.append(SeenBatch(ctx.step, ctx.phase, "fake", fake.detach().clone()))
        return fake

    def of(self, side: str) -> list[SeenBatch]:
        """Only the ``"real"`` or only the ``"fake"`` batches."""
        return [seen for seen in self.batches if seen.side == side]
