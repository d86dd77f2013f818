"""Resuming exactly: a run killed with SIGKILL, stopped with SIGTERM or Ctrl+C, or moved to
another folder, and resumed, ends bit for bit where an uninterrupted run ends, with the same
history (``metrics.csv``, ``alarms.jsonl``) row for row; a kill during a save never spoils
``last.ckpt``.

Real subprocesses and real signals throughout: the recipe (``stateful_digits.yaml``) keeps
every kind of state a run's future depends on.
"""

import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_tricks.lightning.module import ENGINE_STATE_KEY

HERE = Path(__file__).resolve().parent
RECIPE = str(HERE / "stateful_digits.yaml")
STEPS = 240
EVERY = 11  # checkpoints land mid-epoch (28 batches each) and between lazy-penalty steps
LOG_EVERY = 4  # rows land between checkpoints: a kill leaves rows the resume must not double
HISTORY = ("metrics.csv", "alarms.jsonl")

# The same CLI, with one patch: the third checkpoint write dies (SIGKILL) after half its bytes.
DIES_DURING_THIRD_SAVE = """
import os, signal, sys
real_fsync, saves = os.fsync, []
def half_then_die(fd):
    saves.append(fd)
    if len(saves) == 3:
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
os.fsync = half_then_die
from gan_tricks.cli import main
sys.exit(main(sys.argv[1:]))
"""


def fit_command(root: Path, name: str, *extra: str, script: str | None = None) -> list[str]:
    entry = ["-c", script] if script else ["-m", "gan_tricks.cli"]
    return [
        sys.executable, *entry, "fit", "--config", RECIPE, "--name", name, "--wandb", "off",
        "--trainer.default_root_dir", str(root), "--trainer.max_steps", str(STEPS),
        "--checkpoint_every", str(EVERY), "--trainer.log_every_n_steps", str(LOG_EVERY), *extra,
    ]  # fmt: skip


def environment(root: Path) -> dict[str, str]:
    # One thread: float sums in the same order in every process, so "equal" means bit-equal.
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HOME": str(root)}


def run(command: list[str], root: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=environment(root), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def history(run_dir: Path) -> dict[str, str]:
    return {name: _text(run_dir / name) for name in HISTORY}


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def assert_same_history(run_dir: Path, reference: dict) -> None:
    """Every row of the uninterrupted run's history, in order, none lost and none doubled."""
    for name, text in history(run_dir).items():
        expected = reference["history"][name]
        differing = [
            (number, line[:300], theirs[:300])
            for number, (line, theirs) in enumerate(
                itertools.zip_longest(text.splitlines(), expected.splitlines())
            )
            if line != theirs
        ]
        assert differing == [], name


def assert_same_future(resumed: dict, reference: dict) -> None:
    """Weights (G, D, G's average), optimizer moments and every trick's and detector's state
    equal bit for bit."""
    assert resumed["global_step"] == reference["global_step"] == STEPS
    assert resumed["state_dict"].keys() == reference["state_dict"].keys()
    differing = [
        name
        for name, tensor in reference["state_dict"].items()
        if not torch.equal(resumed["state_dict"][name], tensor)
    ]
    assert differing == []
    optimizers = zip(resumed["optimizer_states"], reference["optimizer_states"], strict=True)
    for mine, theirs in optimizers:
        for index, state in theirs["state"].items():
            for key, value in state.items():
                assert torch.equal(mine["state"][index][key], value), (index, key)
    mine, theirs = resumed[ENGINE_STATE_KEY], reference[ENGINE_STATE_KEY]
    for kind, name in [
        *(("tricks", n) for n in ("ExperienceReplay", "AdaptiveAugment", "LeCam", "InstanceNoise")),
        ("detectors", "LossOscillation"),
    ]:
        assert _equal(mine[kind][name], theirs[kind][name]), name
    assert _equal(mine, theirs)


def _equal(a, b) -> bool:
    if torch.is_tensor(a):
        return torch.is_tensor(b) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The reference: the recipe run for STEPS iterations without a stop."""
    root = tmp_path_factory.mktemp("uninterrupted")
    run(fit_command(root, "whole"), root)
    checkpoint = load(root / "whole" / "checkpoints" / "last.ckpt")
    checkpoint["train_seconds"] = json.loads((root / "whole" / "timing.json").read_text())[
        "train_seconds"
    ]
    checkpoint["history"] = history(root / "whole")
    assert checkpoint["history"]["metrics.csv"].count("\n") == 1 + STEPS // LOG_EVERY
    return checkpoint


def test_a_run_killed_at_a_random_moment_resumes_bit_for_bit(uninterrupted, tmp_path):
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = subprocess.Popen(
        fit_command(tmp_path, "killed"),
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (checkpoints / "last.ckpt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint came"
        time.sleep(0.01)
    # Anywhere in the first half of the training still to come: mid-epoch or on an epoch's
    # end, between saves or during one. (80 % once let the killed run finish first under a
    # loaded CI: it can go faster than the run it was timed by.)
    moment = random.uniform(0, 0.5 * uninterrupted["train_seconds"] * (STEPS - EVERY) / STEPS)
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, f"the run ended before the kill ({moment:.2f} s)"
    killed_at = load(checkpoints / "last.ckpt")["global_step"]
    assert 0 < killed_at < STEPS

    run(fit_command(tmp_path, "killed", "--ckpt_path", "last"), tmp_path)

    assert_same_future(load(checkpoints / "last.ckpt"), uninterrupted)
    assert_same_history(tmp_path / "killed", uninterrupted)
    resumes = (tmp_path / "killed" / "resumes.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in resumes] == [killed_at]


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(uninterrupted, tmp_path):
    process = subprocess.run(
        fit_command(tmp_path, "cut", script=DIES_DURING_THIRD_SAVE),
        env=environment(tmp_path),
        capture_output=True,
    )
    assert process.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "cut" / "checkpoints"
    partial = list(checkpoints.glob("*.partial"))
    assert len(partial) == 1  # the save that died, half written
    with pytest.raises(Exception):  # noqa: B017 - torch raises a RuntimeError or an EOFError
        torch.load(partial[0], weights_only=True)
    assert load(checkpoints / "last.ckpt")["global_step"] == 2 * EVERY  # the second save, whole

    run(fit_command(tmp_path, "cut", "--ckpt_path", "last"), tmp_path)

    assert list(checkpoints.glob("*.partial")) == []  # the next save swept it away
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    assert_same_future(load(checkpoints / "last.ckpt"), uninterrupted)
    assert_same_history(tmp_path / "cut", uninterrupted)


@pytest.mark.parametrize(
    ("stop", "said_stop"),
    [(signal.SIGTERM, "stopped by SIGTERM"), (signal.SIGINT, "stopped by Ctrl+C")],
    ids=["SIGTERM", "SIGINT"],
)
def test_a_stop_signal_checkpoints_the_last_iteration_exits_128_plus_it_and_resumes_bit_for_bit(
    uninterrupted, tmp_path, stop, said_stop
):
    # SIGTERM is what docker stop, SLURM and Kubernetes send, SIGINT what Ctrl+C sends: the
    # run stops after the iteration in flight, writes it, and exits as a stopped process (143,
    # 130), not as a finished one.
    checkpoints = tmp_path / "stopped" / "checkpoints"
    process = subprocess.Popen(
        fit_command(tmp_path, "stopped", "--checkpoint_every", "100000"),
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "stopped" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not metrics.exists() or len(metrics.read_text().splitlines()) < 6:
        assert process.poll() is None and time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)
    process.send_signal(stop)
    _, said = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, said[-2000:]
    assert said_stop in said
    stopped_at = load(checkpoints / "last.ckpt")["global_step"]  # no periodic save came first
    assert 20 <= stopped_at < STEPS

    run(fit_command(tmp_path, "stopped", "--ckpt_path", "last"), tmp_path)

    assert_same_future(load(checkpoints / "last.ckpt"), uninterrupted)
    assert_same_history(tmp_path / "stopped", uninterrupted)


def test_a_run_folder_moved_elsewhere_resumes_there_into_its_own_last_checkpoint(
    uninterrupted, tmp_path
):
    # The checkpoint does not remember where it was written: the moved run's last.ckpt is the
    # one resumed from and the one written, and the old place is never touched again.
    first, second = tmp_path / "first", tmp_path / "second"
    run(fit_command(first, "moved", "--trainer.max_steps", str(STEPS // 2)), first)
    second.mkdir()
    shutil.move(first / "moved", second / "moved")
    run(fit_command(second, "moved", "--ckpt_path", "last"), second)

    checkpoints = second / "moved" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.ckpt"]
    assert not (first / "moved").exists()
    assert_same_future(load(checkpoints / "last.ckpt"), uninterrupted)
    assert_same_history(second / "moved", uninterrupted)
    (resume,) = map(json.loads, (second / "moved" / "resumes.jsonl").read_text().splitlines())
    assert resume["step"] == STEPS // 2
    assert resume["changes"]["trainer.max_steps"] == [STEPS // 2, STEPS]  # free, and recorded
