"""Checkpoints a crash cannot spoil: atomic writes, safe loads, no NaN weights, RNG states.

A resumed run must continue exactly where the killed one was. Lightning already saves the
weights, optimizers, schedulers, loop counters and every callback's ``state_dict``; what it
leaves out, and this module adds:

- :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  flushes it to disk and renames it over the old one (``os.replace``), so a kill during a save
  leaves the previous checkpoint whole. Lightning's own save goes through fsspec, whose local
  transaction writes the temporary file in the system's temp folder and *moves* it: across
  file systems (``/tmp`` on tmpfs, runs on disk) that move is a copy into the final path, and
  a kill during the copy truncates it. It also never writes weights that hold NaN or Inf, and
  loads with ``weights_only=True``, turning a corrupt or foreign file into one sentence.
- :class:`RandomStates` saves the global random number generators (Python, NumPy, torch on
  the CPU and every CUDA device) and restores them just before the first resumed iteration,
  after everything that draws random numbers while a fit starts (spectral norm's vectors,
  the shape check's latent codes).

The data position is the data modules' business: their training loaders resume mid-epoch
(:class:`gan_tricks.data.ResumableLoader`, ``Toy2D``'s stream).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO

from gan_tricks.distributed import gather_objects, world
from gan_tricks.engine.random_states import random_states, set_random_states
from gan_tricks.errors import ConfigError
from gan_tricks.trust import check_allowed_classes

# Lightning writes these keys into every checkpoint of a fit; a file without them was not
# written by a Trainer and cannot be resumed.
LIGHTNING_KEYS = ("state_dict", "pytorch-lightning_version")
PARTIAL_SUFFIX = ".partial"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` that never leaves a truncated file at ``path``.

    The bytes go to ``path.<random>.partial`` in the same folder (so the final rename stays on
    one file system), are flushed with ``fsync``, and replace ``path`` in one ``os.replace``: a
    reader sees the old file or the new one, never half of either. A kill leaves at most a
    ``.partial`` file behind, which the next save of that path removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    for stale in path.parent.glob(f"{path.name}.*{PARTIAL_SUFFIX}"):
        stale.unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f"{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getbuffer())
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def nonfinite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` that hold a NaN or an Inf."""
    return [
        name
        for name, value in state_dict.items()
        if torch.is_tensor(value)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, loaded safely (``weights_only``: tensors and plain types only,
    no code runs); a missing, corrupt or foreign file raises ``ConfigError`` with one sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"the checkpoint {path} does not exist; give the path of a .ckpt file.")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        raise ConfigError(
            f"{path} is not a readable checkpoint ({type(error).__name__}: {reason}); "
            "give a last.ckpt written by gan-tricks fit."
        ) from None
    if not isinstance(checkpoint, dict):
        raise ConfigError(
            f"{path} holds a {type(checkpoint).__name__}, not a checkpoint; "
            "give a last.ckpt written by gan-tricks fit."
        )
    return checkpoint


def load_resumable_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint a fit can resume from (written by a Lightning ``Trainer``), loaded safely;
    anything else raises ``ConfigError`` with one sentence."""
    checkpoint = load_checkpoint_file(path, map_location)
    missing = [key for key in LIGHTNING_KEYS if key not in checkpoint]
    if missing:
        raise ConfigError(
            f"{path} is not a checkpoint of a Lightning fit (it has no {missing[0]!r}); "
            "resume from a last.ckpt written by gan-tricks fit."
        )
    # LightningCLI rebuilds the model's saved hyperparameters (and imports what they name).
    check_allowed_classes(checkpoint.get("hyper_parameters") or {}, str(path))
    return checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, with atomic saves, a NaN guard and safe, checked loads."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options.")
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            # Weights with NaN cannot be trained back to health; the checkpoint on disk is the
            # run's last good state, and a resume must find that, not this.
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            warnings.warn(
                f"not writing {path}: the weights hold NaN or Inf ({shown}); the previous "
                "checkpoint is kept.",
                stacklevel=2,
            )
            return
        atomic_save(checkpoint, path)

    def load_checkpoint(
        self, path: str | Path, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_resumable_checkpoint(path, map_location or "cpu")


class RandomStates(pl.Callback):
    """The global random number generators in every checkpoint, restored on resume.

    Tricks draw from the global generators (label noise, instance noise, DiffAugment), so a
    resumed run repeats the uninterrupted one only if they are restored too (the latent codes
    have a generator of their own, saved by the module). Restoring happens at the first
    iteration after loading (``on_train_batch_start``), not on load: between the two, a fit's
    start draws random numbers the uninterrupted run never drew. Under DDP the checkpoint keeps
    every rank's generators, and each rank restores its own.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        # Every rank's generators (they differ: ``distributed.seed_ranks_apart``); each rank
        # calls this when a checkpoint is made, and rank 0 writes the file.
        return {"ranks": gather_objects(random_states())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        ranks = state_dict.get("ranks", [state_dict])  # a file from before ranks were kept
        rank = world()[0]
        # A rank the saved run did not have (resumed on more processes) keeps its fresh state.
        self._pending = ranks[rank] if rank < len(ranks) else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        set_random_states(state)
