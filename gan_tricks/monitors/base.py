"""Failure detectors: objects that watch the step signals and raise alarms.

A detector works in any loop. Given to a :class:`~gan_tricks.engine.GANEngine` (or to the
Lightning adapter's ``detectors``), it sees every iteration's signals plus what it measures
itself from the step context (sample diversity, per-layer gradient norms), and the engine
takes its action (``warn``, ``stop``, ``rollback``, ``remediate``) and routes each alarm to
its handlers: the console, ``alarms.jsonl`` in the run folder, W&B. On its own,
:meth:`Detector.observe` takes the step and a dict of floats and returns the
:class:`Alarm`, if any.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from torch import Tensor

from gan_tricks.engine.context import StepContext
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.actions import REMEDIES, HealthySnapshots, check_remedy

if TYPE_CHECKING:
    import torch

    from gan_tricks.engine.adversarial import GANEngine

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


class Detector:
    """Base class of the failure detectors.

    A subclass implements :meth:`check`, which sees each iteration's signals (a dict of
    floats), updates its window of history and returns a one-line diagnosis when the run is
    failing, and names the signals it cannot work without in ``needs``. The base class
    handles the rest: the warm-up, the cooldown between two alarms of the same detector, the
    checkpoint state, and the actions.

    Args:
        action: ``"warn"`` (report and go on), ``"stop"`` (report and end training after this
            iteration: the engine's ``should_stop``), ``"rollback"`` (restore the weights and
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
    # The signals ``check`` cannot work without (names of ``gan_tricks.engine.SIGNALS``).
    needs: ClassVar[tuple[str, ...]] = ()
    # Whether the engine computes both gradient norms on every step for this detector.
    reads_gradient_norms: ClassVar[bool] = False

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
        self._last_alarm_step: int | None = None
        self._inputs_checked = False

    @property
    def name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ the detection
    def check(self, step: int, signals: Mapping[str, float]) -> Finding | None:
        """Update the history with this step's signals; return a :class:`Finding` (or a
        ``(message, signals)`` pair) when the run is failing, else None."""
        raise NotImplementedError

    def check_inputs(self, signals: Mapping[str, float]) -> None:
        """Raise ``ConfigError`` (one sentence) when ``signals`` lack what ``needs`` names."""
        missing = [name for name in self.needs if name not in signals]
        if missing:
            given = ", ".join(sorted(signals)) or "none"
            raise ConfigError(
                f"{self.name} needs the signals {', '.join(self.needs)} but got no "
                f"{', '.join(missing)} (given: {given}); pass them to observe()/report(), "
                "D's outputs as logits."
            )

    def observe(self, step: int, signals: Mapping[str, float]) -> Alarm | None:
        """Feed one iteration's signals; the alarm, if this step raises one.

        ``step`` is the iterations done; ``signals`` plain floats such as
        ``{"d_loss": 0.01, "d_real": 6.2, "d_fake": -5.9}`` (D's outputs as logits). The
        first call checks that the signals this detector needs are there.
        """
        if not self._inputs_checked:
            self.check_inputs(signals)
            self._inputs_checked = True
        finding = self.check(step, signals)
        if finding is None or step < self.warmup:
            return None
        if self._last_alarm_step is not None and step - self._last_alarm_step < self.cooldown:
            return None
        message, triggered, remedy = Finding(*finding)
        remedy = remedy or self.remedy
        if remedy:
            message = f"{message} Try: {remedy}"
        action = self.action if self.action in ("warn", "stop") else f"{self.action} (pending)"
        alarm = Alarm(step, self.name, self.severity, message, triggered, remedy, action)
        self._last_alarm_step = step
        self.alarms.append(alarm)
        return alarm

    def measure(self, ctx: StepContext, signals: Mapping[str, float]) -> dict[str, float]:
        """What this detector computes itself from the step context beyond ``signals``
        (per-layer gradient norms, sample diversity); none by default."""
        return {}

    def before_optimizer_step(self, ctx: StepContext, optimizer: torch.optim.Optimizer) -> None:
        """Called before each optimizer step, gradients in place (a guard may drop them)."""

    def fake_and_real(self, ctx: StepContext, every: int) -> tuple[Tensor, Tensor] | None:
        """G's raw batch of this iteration's G step and the real batch, every ``every``
        iterations (None on other iterations, or when the loop gave neither)."""
        if (ctx.step + 1) % every or ctx.g_output is None or ctx.real_batch is None:
            return None
        return ctx.g_output, ctx.real_batch

    def warn_no_samples(self, ctx: StepContext, every: int, instead: str) -> None:
        """Say once, on the console, that a checking iteration came without the batches this
        detector reads (a loop's ``engine.report`` without ``real`` and ``fake``) nor the
        values it would compute from them (``instead``): such iterations check nothing."""
        if (ctx.step + 1) % every or getattr(self, "_warned_no_samples", False):
            return
        self._warned_no_samples = True
        console.warning(
            f"{self.name} got no samples at step {ctx.step + 1}: pass real= and fake= (G's raw "
            f"output) to engine.report, or report {instead} yourself; until then it checks "
            "nothing."
        )

    # ------------------------------------------------------------------ the actions
    def act(self, engine: GANEngine) -> str:
        """Take the detector's action on an alarm; what was done, in words."""
        if self.action == "stop":
            engine.should_stop = True
            return "stop"
        if self.action == "remediate":
            return "remediate: " + REMEDIES[self.remedy_name](engine)
        if self.action == "rollback":
            step = self.snapshots.restore(engine)
            if step is None:
                return "rollback: no healthy state kept yet, nothing restored"
            self.reset_history()
            return f"rollback: restored the weights and optimizer states of step {step}"
        return "warn"

    def quiet_for(self, step: int) -> bool:
        """Whether no alarm came within a cooldown: the window that led to the last alarm may
        have started going wrong well before it, so only then is a state healthy."""
        return self._last_alarm_step is None or step - self._last_alarm_step >= self.cooldown

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


# Under these losses D's loss is a cross-entropy of sigmoid(logit), so a reported D loss says
# whether d_real / d_fake were logits or probabilities.
_SIGMOID_LOSSES = ("nonsaturating", "minimax")
# Steps in a row that must fit probabilities better before the run is told.
_PROBABILITY_STEPS = 3


def check_logits(signals: Mapping[str, float], loss: str, probability_like: int) -> int:
    """Raise ``ConfigError`` when ``d_real`` / ``d_fake`` look like D's probabilities rather
    than its logits for ``_PROBABILITY_STEPS`` reports in a row; returns the new count.

    Under a sigmoid cross-entropy loss, D's loss is about softplus(-d_real) + softplus(d_fake)
    for logits and -log(d_real) - log(1 - d_fake) for probabilities (exactly so for a batch of
    one; Jensen's gap otherwise); whichever is closer to the reported ``d_loss`` says which.
    """
    if loss not in _SIGMOID_LOSSES or not {"d_loss", "d_real", "d_fake"} <= signals.keys():
        return 0
    d_loss, real, fake = (float(signals[k]) for k in ("d_loss", "d_real", "d_fake"))
    if not (0.0 < real < 1.0 and 0.0 < fake < 1.0 and math.isfinite(d_loss)):
        return 0
    as_logits = _softplus(-real) + _softplus(fake)
    as_probabilities = -math.log(real) - math.log(1.0 - fake)
    if abs(d_loss - as_probabilities) >= abs(d_loss - as_logits):
        return 0
    probability_like += 1
    if probability_like >= _PROBABILITY_STEPS:
        raise ConfigError(
            f"d_real ({real:.3g}) and d_fake ({fake:.3g}) look like D's probabilities, not its "
            f"logits (D's loss {d_loss:.3g} fits -log D(x) - log(1 - D(G(z)))); report the "
            "mean logits, before the sigmoid."
        )
    return probability_like


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


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
