"""A run's history that survives a resume: ``metrics.csv``, ``alarms.jsonl``, ``quality.jsonl``.

A killed run has logged past its last checkpoint; the resumed run logs those iterations
again. So every checkpoint records how long each history file was when it was written
(:class:`RunHistory`'s state), and a resumed run cuts each file back to that length when
training starts, then appends: no row lost, none doubled, and the files of a resume that
fails before training are left as they were.

``metrics.csv`` is written by :class:`MetricsLogger`, a Lightning logger that puts each row on
disk as it is logged (Lightning's ``CSVLogger`` deletes the file when a run resumes in its
folder, and buffers rows that a kill then loses). ``GANModule`` logs its signals to the
loggers inside the training step, so the row of an iteration is on disk before that
iteration's checkpoint is.
"""

from __future__ import annotations

import json
import os
import time
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from gan_tricks.engine.recorder import ALARMS_FILE, METRICS_FILE, QUALITY_FILE, MetricsFile
from gan_tricks.paths import write_atomically

RESUMES_FILE = "resumes.jsonl"  # one line per resume: the step and the settings it changed
LINE_FILES = (ALARMS_FILE, QUALITY_FILE)


class MetricsLogger(Logger):
    """``metrics.csv`` in the run folder: ``step``, ``epoch`` and one column per logged value,
    each row written (and flushed) when it is logged."""

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.file = MetricsFile(self.run_dir / METRICS_FILE)

    @property
    def name(self) -> str:
        return "metrics"

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.run_dir)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {key: _plain(value) for key, value in metrics.items()}
        self.file.append({"step": step, **row} if step is not None else row)

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args, **kwargs) -> None:
        # The run's config.yaml is the record of its settings.
        return None


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class RunHistory(pl.Callback):
    """Keeps the run folder's history files whole across resumes.

    Its state, saved in every checkpoint, is the number of rows of ``metrics.csv`` and of lines
    of ``alarms.jsonl`` and ``quality.jsonl`` at the time of the save. When a resumed fit starts
    training, each file is cut back to that length (what was logged after the checkpoint is
    logged again), and ``resumes.jsonl`` gets a line: the step resumed from, the checkpoint,
    and ``changes``, the settings that differ from the checkpoint's (``{key: [old, new]}``).
    """

    def __init__(
        self, run_dir: str | Path, metrics: MetricsFile, changes: dict[str, list] | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.metrics = metrics
        self.changes = changes or {}
        self.checkpoint: str | None = None
        self.restored: dict[str, int] | None = None

    def state_dict(self) -> dict[str, Any]:
        lengths = {METRICS_FILE: self.metrics.count()}
        for name in LINE_FILES:
            lengths[name] = _line_count(self.run_dir / name)
        return {"lengths": lengths}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restored = dict(state_dict.get("lengths", {}))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.restored is None or not trainer.is_global_zero:
            return
        self.metrics.keep_first(self.restored.get(METRICS_FILE, 0))
        for name in LINE_FILES:
            _keep_first_lines(self.run_dir / name, self.restored.get(name, 0))
        record = {
            "step": trainer.global_step,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "checkpoint": self.checkpoint,
            "changes": self.changes,
        }
        with open(self.run_dir / RESUMES_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def _line_count(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _keep_first_lines(path: Path, count: int) -> None:
    """Cut ``path`` back to its first ``count`` lines, atomically (a kill leaves the old file
    or the new one)."""
    if not path.is_file() or _line_count(path) <= count:
        return
    with open(path, "rb") as handle:
        kept = [line for line in handle if line.strip()][:count]

    def write(partial: Path) -> None:
        with open(partial, "wb") as handle:
            handle.writelines(kept)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomically(path, write)
