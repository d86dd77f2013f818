"""Failure detectors: callbacks that watch the step signals and raise alarms.

A detector is usable two ways. In a hand-written loop, call :meth:`Detector.observe` with the
step and a dict of floats each iteration and act on the :class:`Alarm` it returns. In a
Lightning run, add it to ``trainer.callbacks``: after every iteration it reads the signals the
module recorded (``module.signals``, plus anything :meth:`Detector.measure` computes itself),
and routes each alarm to the console, to ``alarms.jsonl`` in the run folder and to W&B (an
alert and a summary entry), then takes its action (``warn`` or ``stop``).
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor

from gan_tricks.distributed import average_values
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.actions import REMEDIES, HealthySnapshots, check_remedy

ALARMS_FILE = "alarms.jsonl"
ACTIONS = ("warn", "stop", "rollback", "remediate")
SEVERITIES = ("warning", "error")

console = logging.getLogger("gan_tricks.monitors")


@dataclass(frozen=True)
class Alarm:
    """One failure, as a detector saw it.

    Attributes:
        step: the iteration (G steps done) when it was raised.
        detector: the detector's class name.
        severity: ``"warning"`` (training may recover) or ``"error"`` (it will not).
        message: one line: what is wrong, since when, and what to try.
        signals: the values that triggered it.
        remedy: the suggested tricks, also at the end of ``message``.
        action: what the run did about it: ``warn``, ``stop``, or what a ``rollback`` or a
            ``remediate`` changed.
    """

    step: int
    detector: str
    severity: str
    message: str
    signals: dict[str, float] = field(default_factory=dict)
    remedy: str = ""
    action: str = "warn"

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True)

    def line(self) -> str:
        """The console line."""
        head = f"gan-tricks alarm at step {self.step}: {self.detector} ({self.severity}): "
        tail = "" if self.action == "warn" else f" Action: {self.action}."
        return head + self.message + tail


class Finding(NamedTuple):
    """What :meth:`Detector.check` returns when the run is failing."""

    message: str  # what is wrong and since when
    signals: dict[str, float]  # the values that show it
    remedy: str | None = None  # when it differs from the detector's usual one


class Detector(pl.Callback):
    """Base class of the failure detectors.

    A subclass implements :meth:`check`, which sees each iteration's signals (a dict of
    floats), updates its window of history and returns a one-line diagnosis when the run is
    failing. The base class handles the rest: the warm-up, the cooldown between two alarms of
    the same detector, the checkpoint state, and routing each alarm.

    Args:
        action: ``"warn"`` (report and go on), ``"stop"`` (report and end the fit after this
            iteration, like ``EarlyStopping``), ``"rollback"`` (restore the weights and
            optimizer states of a healthy moment, at least ``rollback_every`` iterations back,
            and go on) or ``"remediate"`` (apply ``remedy``, a name from
            ``gan_tricks.monitors.actions.REMEDIES``, and go on).
        warmup: iterations during which no alarm is raised (the history still fills): the
            first steps of every GAN look odd.
        cooldown: iterations after an alarm during which the same detector stays quiet, so a
            failure that persists is reported once per ``cooldown`` steps, not on every step.
        remedy: for ``action: remediate``, e.g. ``lower_d_lr`` or ``raise_instance_noise``.
        rollback_every: for ``action: rollback``, how often a healthy state is kept (in
            memory: one copy of the weights and optimizer states, twice).
    """

    remedy: ClassVar[str] = ""
    severity: ClassVar[str] = "warning"

    def __init__(
        self,
        action: str = "warn",
        warmup: int = 100,
        cooldown: int = 1000,
        remedy: str | None = None,
        rollback_every: int = 200,
    ) -> None:
        if action not in ACTIONS:
            choices = ", ".join(ACTIONS)
            raise ConfigError(f"a detector's action must be one of {choices} (got {action!r}).")
        if warmup < 0 or cooldown < 0:
            raise ConfigError(f"warmup and cooldown must be >= 0 (got {warmup}, {cooldown}).")
        check_remedy(remedy)
        if action == "remediate" and remedy is None:
            raise ConfigError(f"action remediate needs a remedy: one of {', '.join(REMEDIES)}.")
        self.action = action
        self.warmup = warmup
        self.cooldown = cooldown
        self.remedy_name = remedy
        self.snapshots = HealthySnapshots(rollback_every) if action == "rollback" else None
        self.alarms: list[Alarm] = []
        self.real_batch: Tensor | None = None  # this iteration's, for detectors that compare
        self._last_alarm_step: int | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ the detection
    def check(self, step: int, signals: Mapping[str, float]) -> Finding | None:
        """Update the history with this step's signals; return a :class:`Finding` (or a
        ``(message, signals)`` pair) when the run is failing, else None."""
        raise NotImplementedError

    def observe(self, step: int, signals: Mapping[str, float]) -> Alarm | None:
        """Feed one iteration's signals; the alarm, if this step raises one.

        This is the whole detector for a hand-written loop: call it after every iteration
        with plain floats (``{"d_loss": 0.01, "d_real": 6.2, ...}``).
        """
        finding = self.check(step, signals)
        if finding is None or step < self.warmup:
            return None
        if self._last_alarm_step is not None and step - self._last_alarm_step < self.cooldown:
            return None
        message, triggered, remedy = Finding(*finding)
        remedy = remedy or self.remedy
        if remedy:
            message = f"{message} Try: {remedy}"
        alarm = Alarm(step, self.name, self.severity, message, triggered, remedy)
        self._last_alarm_step = step
        self.alarms.append(alarm)
        return alarm

    def measure(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict[str, float]:
        """This iteration's signals: the module's, as floats. Detectors that compute more
        (per-layer gradient norms, sample diversity) extend it."""
        return dict(_as_floats(getattr(module, "signals", {})))

    # ------------------------------------------------------------------ Lightning
    def fake_and_real(
        self, trainer: pl.Trainer, module: pl.LightningModule, every: int
    ) -> tuple[Tensor, Tensor] | None:
        """G's raw batch of this iteration's G step and the real batch, every ``every``
        iterations (None on other iterations, or before both exist)."""
        fake = getattr(module, "g_fake", None)
        if trainer.global_step % every or fake is None or self.real_batch is None:
            return None
        return fake, self.real_batch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.real_batch = batch[0] if isinstance(batch, list | tuple) else batch
        signals = self.measure(trainer, pl_module)
        if trainer.world_size > 1:
            # The module's signals are already global means; what this detector measured on
            # its rank's batch (diversity, overfitting) is averaged, so every rank raises the
            # same alarms and takes the same action (a stop or a rollback on one rank alone
            # would leave the others waiting).
            module_signals = getattr(pl_module, "signals", {})
            own = {k: v for k, v in signals.items() if k not in module_signals}
            signals = {**signals, **average_values(own)}
        self._log_own_signals(pl_module, signals)
        alarm = self.observe(trainer.global_step, signals)
        if alarm is None:
            if self.snapshots is not None and self._quiet_for(trainer.global_step):
                self.snapshots.maybe_take(trainer, pl_module)
            return
        alarm = replace(alarm, action=self.act(trainer, pl_module))
        self.alarms[-1] = alarm
        self.report(trainer, alarm)

    def act(self, trainer: pl.Trainer, module: pl.LightningModule) -> str:
        """Take the detector's action on an alarm; what was done, in words."""
        if self.action == "stop":
            trainer.should_stop = True
            return "stop"
        if self.action == "remediate":
            return "remediate: " + REMEDIES[self.remedy_name](trainer, module)
        if self.action == "rollback":
            step = self.snapshots.restore(trainer, module)
            if step is None:
                return "rollback: no healthy state kept yet, nothing restored"
            self.reset_history()
            return f"rollback: restored the weights and optimizer states of step {step}"
        return "warn"

    def _quiet_for(self, step: int) -> bool:
        # A state is healthy when no alarm came within a cooldown: the window that led to the
        # last alarm may have started going wrong well before it.
        return self._last_alarm_step is None or step - self._last_alarm_step >= self.cooldown

    def _log_own_signals(self, module: pl.LightningModule, signals: Mapping[str, float]) -> None:
        # What the detector computed beyond the module's signals (per-layer gradient norms,
        # diversity) goes to the loggers as monitor/<name>, on the module's logging steps.
        own = {k: v for k, v in signals.items() if k not in getattr(module, "signals", {})}
        logs_this_step = getattr(module, "_logs_this_step", lambda: True)
        if own and logs_this_step():
            module.log_dict({f"monitor/{k}": v for k, v in own.items()}, on_step=True)

    def report(self, trainer: pl.Trainer, alarm: Alarm) -> None:
        """Send an alarm to the console, ``alarms.jsonl`` and W&B."""
        report_alarm(trainer, alarm)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        state = {
            "alarms": [asdict(alarm) for alarm in self.alarms],
            "last_alarm_step": self._last_alarm_step,
            "history": self.history_state(),
        }
        if self.snapshots is not None:
            # A resumed run must be able to roll back to what the killed one would have.
            state["snapshots"] = [[step, kept] for step, kept in self.snapshots.kept]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.alarms = [Alarm(**alarm) for alarm in state_dict.get("alarms", [])]
        self._last_alarm_step = state_dict.get("last_alarm_step")
        self.load_history_state(state_dict.get("history", {}))
        if self.snapshots is not None:
            self.snapshots.kept.clear()
            self.snapshots.kept.extend((int(s), k) for s, k in state_dict.get("snapshots", []))

    def history_state(self) -> dict[str, Any]:
        """The window of history, as plain lists (for ``state_dict``)."""
        return {name: list(value) for name, value in vars(self).items() if isinstance(value, deque)}

    def load_history_state(self, state: dict[str, Any]) -> None:
        for name, values in state.items():
            window = getattr(self, name)
            window.clear()
            window.extend(values)

    def reset_history(self) -> None:
        """Forget the window of history (after a rollback, it describes weights now gone)."""
        self.load_history_state({name: [] for name in self.history_state()})


# The last signals dict seen and its floats. Holding the dict itself (not its id) means a new
# dict can never be taken for it.
_last_floats: tuple[Mapping[str, Any] | None, dict[str, float]] = (None, {})


def _as_floats(signals: Mapping[str, Any]) -> dict[str, float]:
    """The step's signals as floats, converted once per step for all detectors: the module
    sets a new dict each iteration (each ``float`` of a CUDA tensor is a device sync)."""
    global _last_floats
    if _last_floats[0] is not signals:
        _last_floats = (signals, {name: float(value) for name, value in signals.items()})
    return _last_floats[1]


def alarm_count(trainer: pl.Trainer) -> int:
    """Alarms raised so far by every detector of the run."""
    return sum(len(c.alarms) for c in trainer.callbacks if isinstance(c, Detector))


@rank_zero_only
def report_alarm(trainer: pl.Trainer, alarm: Alarm) -> None:
    line = alarm.line()
    progress_bar = trainer.progress_bar_callback
    if progress_bar is not None and progress_bar.is_enabled:
        progress_bar.print(line)  # above the bar, not through it
    else:
        console.warning(line)
    if progress_bar is not None:
        trainer.progress_bar_metrics["alarms"] = alarm_count(trainer)
    run_dir = Path(trainer.default_root_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ALARMS_FILE, "a") as handle:
        handle.write(alarm.to_json() + "\n")
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            _send_to_wandb(logger.experiment, alarm)


def _send_to_wandb(run, alarm: Alarm) -> None:
    import wandb

    level = wandb.AlertLevel.ERROR if alarm.severity == "error" else wandb.AlertLevel.WARN
    run.alert(title=f"{alarm.detector} at step {alarm.step}", text=alarm.message, level=level)
    alarms = dict(run.summary.get("alarms", {}) or {})
    alarms[alarm.detector] = {
        "step": alarm.step,
        "severity": alarm.severity,
        "message": alarm.message,
        "action": alarm.action,
    }
    run.summary["alarms"] = alarms
    run.summary["alarm_count"] = int(run.summary.get("alarm_count", 0) or 0) + 1


def read_alarms(run_dir: str | Path) -> list[Alarm]:
    """The alarms a run wrote to its ``alarms.jsonl`` (none if it has no such file)."""
    path = Path(run_dir) / ALARMS_FILE
    if not path.is_file():
        return []
    return [Alarm(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def probability(logit: float) -> float:
    """D's probability of "real" for a logit (the sigmoid, safe for any float)."""
    return 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))
