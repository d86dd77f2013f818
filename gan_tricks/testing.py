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

import copy
import struct
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from gan_tricks.engine import StepContext, unique_names
from gan_tricks.functional.latent import Latent
from gan_tricks.lightning import GANModule
from gan_tricks.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_tricks.models.mlp import MLPDiscriminator, MLPGenerator
from gan_tricks.tricks.base import ORDER_DEFAULT, Trick

__all__ = [
    "BatchRecorder",
    "RankStateDump",
    "SeenBatch",
    "SignalHistory",
    "assert_logit_sees_the_batch",
    "fit_briefly",
    "random_points",
    "tiny_gan_module",
    "tiny_image_gan_module",
    "wandb_records",
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


class RankStateDump(pl.Callback):
    """Each process's state at the end of a fit, in ``folder/rank{r}.pt``: for tests that
    compare the ranks of a distributed run with each other and with a single-process run.

    The file holds G's and D's state dicts (weights and buffers), G's moving average if one is
    kept, what the two networks compute (G's output for 64 fixed codes and D's logits on it, in
    training mode on copies: a bias that BatchNorm cancels drifts on rounding noise alone, so
    the function is the fair thing to compare), the gradients of the first D step and the
    first G step (as the optimizers saw them, after any averaging over ranks), the last
    signals, and the ``state_dict`` of every trick and detector (buffers, alarms, histories)
    under ``"engine"``, keyed by class name.
    Add it to a recipe under ``trainer.callbacks``; it writes from every rank, on purpose.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.first_gradients: list[dict[str, Tensor]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if len(self.first_gradients) == 2:
            return
        stepping = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self.first_gradients.append(
            {
                name: p.grad.detach().clone()
                for name, p in pl_module.named_parameters()
                if id(p) in stepping and p.grad is not None
            }
        )

    def on_train_end(self, trainer, pl_module) -> None:
        ema = getattr(pl_module, "generator_ema", None)
        codes = pl_module.latent.sample(64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            fake = copy.deepcopy(pl_module.generator).train()(codes.to(pl_module.device))
            logits = copy.deepcopy(pl_module.discriminator).train()(fake)
        state = {
            "fake": fake.cpu(),
            "logits": logits.cpu(),
            "global_step": trainer.global_step,
            "generator": pl_module.generator.state_dict(),
            "discriminator": pl_module.discriminator.state_dict(),
            "generator_ema": None if ema is None else ema.state_dict(),
            "first_gradients": self.first_gradients,
            "signals": pl_module.signals.floats(),
            "engine": {
                name: obj.state_dict()
                for name, obj in unique_names([*pl_module.tricks, *pl_module.detectors]).items()
            },
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")


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


# W&B's run files (``run-*.wandb``) are a LevelDB-style log: a 7-byte file header (``:W&B``,
# a magic number and a version), then 32 KiB blocks of chunks, each with a 7-byte header
# (CRC32C, payload length, kind: 1 whole, 2 first, 3 middle, 4 last) and a payload that is
# part of one serialized ``Record`` protobuf. wandb 0.19+ has no Python reader of its own.
_WANDB_BLOCK = 32 * 1024
_WANDB_CHUNK_HEADER = struct.Struct("<IHB")


def wandb_records(run_file: str | Path, kind: str | None = None) -> Iterator[Any]:
    """The records of a W&B run file (``wandb/offline-run-*/run-*.wandb``), in order.

    Each is a ``wandb.proto.wandb_internal_pb2.Record``; ``kind`` keeps only one type
    (``"history"``, ``"summary"``, ``"alert"``, ``"config"``, ...). This lets a test read
    what an offline run really wrote, without an account and without mocking the logger.
    """
    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{run_file} is not a W&B run file.")
    position, pending = 7, b""
    while position + _WANDB_CHUNK_HEADER.size <= len(data):
        left_in_block = _WANDB_BLOCK - position % _WANDB_BLOCK
        if left_in_block < _WANDB_CHUNK_HEADER.size:  # the block's zero padding
            position += left_in_block
            continue
        _, length, chunk_kind = _WANDB_CHUNK_HEADER.unpack_from(data, position)
        start = position + _WANDB_CHUNK_HEADER.size
        payload, position = data[start : start + length], start + length
        if chunk_kind == 0:  # a zeroed tail: nothing more in this block
            position += left_in_block - _WANDB_CHUNK_HEADER.size - length
            continue
        pending = payload if chunk_kind in (1, 2) else pending + payload
        if chunk_kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            if kind is None or record.WhichOneof("record_type") == kind:
                yield record


def finished_wandb_records(
    run_file: str | Path, kind: str | None = None, timeout: float = 30.0
) -> list[Any]:
    """:func:`wandb_records` once the run's exit record is in the file.

    W&B's service process writes the file after the client has logged (and even after
    ``finish`` returns under load), so a read straight after a run can miss its last records
    (alerts among them). Raises ``TimeoutError`` if the exit record is not in after ``timeout``
    seconds.
    """
    deadline = time.monotonic() + timeout
    while not any(True for _ in wandb_records(run_file, "exit")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_file} has no exit record after {timeout} s.")
        time.sleep(0.1)
    return list(wandb_records(run_file, kind))
