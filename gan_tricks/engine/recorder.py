"""Where a run's signals and alarms go: the run folder, the console, W&B, in any loop.

The Lightning adapter and a hand-written loop write the same run folder: ``metrics.csv``
(``step`` and one ``train/<signal>`` / ``monitor/<measurement>`` column each), ``alarms.jsonl``,
``samples/step_NNNNNNN.png`` snapshots, ``samples.png``, ``training.png``, so that
``gan-tricks report`` reads either.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gan_tricks.engine.signals import StepSignals
from gan_tricks.paths import write_atomically

if TYPE_CHECKING:
    from gan_tricks.engine.adversarial import GANEngine
    from gan_tricks.monitors.base import Alarm

METRICS_FILE = "metrics.csv"
ALARMS_FILE = "alarms.jsonl"
SNAPSHOT_FOLDER = "samples"
QUALITY_FILE = "quality.jsonl"  # QualityProbe's measurements
EVALUATION_FILE = "evaluation.json"  # the final evaluation (QualityProbe's final_evaluation)
ALARM_TABLE_COLUMNS = ("step", "detector", "severity", "message", "remedy", "action")

console = logging.getLogger("gan_tricks.monitors")


def signal_columns(signals: StepSignals | Mapping[str, float]) -> dict[str, float]:
    """One iteration's values under their log names: ``train/<signal>`` for the step's
    signals and the tricks' values, ``monitor/<name>`` for what detectors measured."""
    if isinstance(signals, StepSignals):
        row = {f"train/{k}": float(v) for k, v in signals.as_dict().items()}
        row.update({f"monitor/{k}": float(v) for k, v in signals.measured.items()})
        return row
    return {f"train/{k}": float(v) for k, v in signals.items()}


def write_alarm(run_dir: str | Path, alarm: Alarm) -> None:
    """Append ``alarm`` to the run folder's ``alarms.jsonl``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ALARMS_FILE, "a") as handle:
        handle.write(alarm.to_json() + "\n")


def send_alarm_to_wandb(run: Any, alarm: Alarm) -> None:
    """An alarm in a W&B run: an alert, a step series per detector (``alarms/<detector>``),
    and in the summary every alarm so far (``alarms``, a list), their count and a table."""
    import wandb

    level = wandb.AlertLevel.ERROR if alarm.severity == "error" else wandb.AlertLevel.WARN
    run.alert(title=f"{alarm.detector} at step {alarm.step}", text=alarm.message, level=level)
    if _can_log_at(run, alarm):
        run.log({f"alarms/{alarm.detector}": 1}, step=alarm.step)
    kept = list(run.summary.get("alarms", None) or [])
    if isinstance(kept, dict):  # a run from before alarms were a list
        kept = list(kept.values())
    kept.append({column: getattr(alarm, column) for column in ALARM_TABLE_COLUMNS})
    run.summary["alarms"] = kept
    run.summary["alarm_count"] = len(kept)
    table = wandb.Table(columns=list(ALARM_TABLE_COLUMNS))
    for row in kept:
        table.add_data(*(row.get(column) for column in ALARM_TABLE_COLUMNS))
    run.summary["alarm_table"] = table


def _can_log_at(run: Any, alarm: Alarm) -> bool:
    # W&B refuses a step below the run's current one (the alarm is raised before the step's
    # metrics are logged, so its step is never behind).
    current = getattr(run, "step", 0) or 0
    return alarm.step >= current


def print_alarm(alarm: Alarm, printer: Callable[[str], None] | None = None) -> None:
    """The alarm's one line on the console (through ``printer``, e.g. a progress bar's)."""
    if printer is None:
        console.warning(alarm.line())
    else:
        printer(alarm.line())


class RunRecorder:
    """A run folder for a hand-written loop, the same files ``gan-tricks fit`` writes.

    ::

        engine = GANEngine(G, D, opt_g, opt_d, recorder=RunRecorder("runs/mine"))
        for real in loader:
            engine.step(real)  # logged; its alarms to the console, alarms.jsonl, W&B
        engine.close()  # samples.png and training.png

    or, with a loop of its own: ``recorder.attach(engine)`` and ``recorder.log(step,
    signals)`` after each iteration, ``recorder.close(engine)`` at the end.

    Args:
        run_dir: the run folder (created).
        every: log every ``every`` iterations.
        wandb_run: a W&B run (``wandb.init(...)``) that also gets the logged values and the
            alarms; None for none.
        snapshot_every: save a sample picture every so many iterations (None: never).
        config: the run's settings, written to ``config.json`` (and W&B's run config).
        data: the data (its ``modes`` and ``real_samples`` draw 2D pictures over the truth).
    """

    def __init__(
        self,
        run_dir: str | Path,
        every: int = 10,
        wandb_run: Any = None,
        snapshot_every: int | None = None,
        config: Mapping[str, Any] | None = None,
        data: Any = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.every = every
        self.wandb_run = wandb_run
        self.snapshot_every = snapshot_every
        self.data = data
        self.history: list[dict[str, float]] = []
        self.metrics = MetricsFile(self.run_dir / METRICS_FILE)
        if config is not None:
            (self.run_dir / "config.json").write_text(json.dumps(dict(config), indent=2) + "\n")
            if wandb_run is not None:
                wandb_run.config.update(dict(config), allow_val_change=True)

    def attach(self, engine: GANEngine, printer: Callable[[str], None] | None = None) -> None:
        """Route the engine's alarms to the console, ``alarms.jsonl`` and W&B."""
        engine.alarm_handlers.append(self.alarm)
        self._printer = printer

    def alarm(self, alarm: Alarm) -> None:
        print_alarm(alarm, getattr(self, "_printer", None))
        write_alarm(self.run_dir, alarm)
        if self.wandb_run is not None:
            send_alarm_to_wandb(self.wandb_run, alarm)

    def log(
        self,
        step: int,
        signals: StepSignals | Mapping[str, float],
        engine: GANEngine | None = None,
    ) -> None:
        """Record iteration ``step``'s values when it is a logging step (and a snapshot when
        one is due and ``engine`` is given)."""
        if step % self.every == 0:
            row = signal_columns(signals)
            self.metrics.append({"step": step, **row})
            self.history.append({"step": float(step), **{k[6:]: v for k, v in row.items()}})
            if self.wandb_run is not None:
                self.wandb_run.log(row, step=step)
        if engine is not None and self.snapshot_every and step % self.snapshot_every == 0:
            self.snapshot(engine, step)

    def snapshot(self, engine: GANEngine, step: int) -> Path:
        """A picture of the engine's samples, ``samples/step_NNNNNNN.png``."""
        from gan_tricks.plotting import save_samples

        path = self.run_dir / SNAPSHOT_FOLDER / f"step_{step:07d}.png"
        save_samples(engine.sample(self._picture_samples(engine), seed=0), path, self.data)
        return path

    def close(self, engine: GANEngine) -> None:
        """The closing pictures: ``samples.png`` and ``training.png``."""
        from gan_tricks.plotting import plot_training, save_samples

        samples = engine.sample(self._picture_samples(engine), seed=0)
        save_samples(samples, self.run_dir / "samples.png", self.data)
        if self.history:
            plot_training(self.history, self.run_dir / "training.png")

    def _picture_samples(self, engine: GANEngine) -> int:
        kind = getattr(self.data, "kind", None)
        return 2500 if kind == "points" else 64


class MetricsFile:
    """``metrics.csv``: one row per logged step, on disk when :meth:`append` returns (a kill
    loses no logged row). When a row brings a new column (a lazy penalty's first value, a
    detector's measurement), the file is rewritten under the wider header, atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._columns: list[str] | None = None  # read from the file when first needed

    @property
    def columns(self) -> list[str]:
        if self._columns is None:
            self._columns = _read_header(self.path)
        return self._columns

    def append(self, row: Mapping[str, Any]) -> None:
        new = [key for key in row if key not in self.columns]
        if new or not self.path.is_file():
            rows = _read_rows(self.path) if self.path.is_file() else []
            self._rewrite([*rows, dict(row)], [*self.columns, *new])
            return
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns).writerow(row)

    def count(self) -> int:
        """The number of rows (the header not counted)."""
        return len(_read_rows(self.path)) if self.path.is_file() else 0

    def keep_first(self, count: int) -> None:
        """Cut the file back to its first ``count`` rows (a resumed run logs the rest again)."""
        if not self.path.is_file():
            return
        rows = _read_rows(self.path)
        if len(rows) > count:
            self._rewrite(rows[:count], self.columns)

    def _rewrite(self, rows: list[Mapping[str, Any]], columns: list[str]) -> None:
        def write(partial: Path) -> None:
            with open(partial, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                writer.writerows(rows)

        write_atomically(self.path, write)
        self._columns = list(columns)


def _read_header(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
