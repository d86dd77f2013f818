"""What a resume may change: free settings change for real and are recorded; others are
refused unless ``--resume_changes true``, and then they reach the restored optimizers.

The real command in-process on ring8, a few iterations at a time.
"""

import json
from pathlib import Path

import pytest
import torch
import yaml

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parents[2]
RING8 = str(ROOT / "recipes" / "ring8.yaml")
QUIET = ["--wandb", "off", "--trainer.enable_progress_bar", "false"]
OVERPOWERING = """\
model:
  detectors:
    - class_path: gan_tricks.monitors.DiscriminatorOverpowering
      init_args: {action: warn}
"""


@pytest.fixture
def run(tmp_path, monkeypatch) -> Path:
    """A ring8 run of 3 iterations named ``r`` in an empty folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "detector.yaml").write_text(OVERPOWERING)
    assert main(fit("--trainer.max_steps", "3")) == 0
    return tmp_path / "runs" / "r"


def fit(*extra: str) -> list[str]:
    return ["fit", "--config", RING8, "--config", "detector.yaml", "--name", "r", *QUIET, *extra]


def resumes(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "resumes.jsonl").read_text().splitlines()]


def checkpoint(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def rates(checkpoint: dict) -> list[list[float]]:
    return [[group["lr"] for group in o["param_groups"]] for o in checkpoint["optimizer_states"]]


def stored_config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_free_settings_change_for_real_and_are_recorded_in_the_history_and_config(run):
    longer = ["--ckpt_path", "last", "--trainer.max_steps", "6"]
    stop = ["--model.detectors.init_args.action", "stop"]  # the last detector given

    assert main(fit(*longer, *stop, "--trainer.log_every_n_steps", "2")) == 0

    assert checkpoint(run)["global_step"] == 6
    (resume,) = resumes(run)
    assert resume["step"] == 3
    assert resume["changes"] == {
        "trainer.max_steps": [3, 6],
        "trainer.log_every_n_steps": [20, 2],
        "model.detectors[DiscriminatorOverpowering].action": ["warn", "stop"],
    }
    config = stored_config(run)
    assert config["trainer"]["max_steps"] == 6
    assert config["model"]["detectors"][0]["init_args"]["action"] == "stop"


def test_resume_changes_true_puts_a_new_learning_rate_into_the_optimizer(run):
    before = checkpoint(run)
    new_rate = ["--model.g_optimizer.init_args.lr", "0.01", "--resume_changes", "true"]

    assert main(fit("--ckpt_path", "last", "--trainer.max_steps", "6", *new_rate)) == 0

    after = checkpoint(run)
    assert rates(before) == [[0.0005], [0.0005]]
    assert sorted(rates(after)) == [[0.0005], [0.01]]  # G's alone at the new rate
    (resume,) = resumes(run)
    assert resume["changes"]["model.g_optimizer.lr"] == [0.0005, 0.01]
    assert stored_config(run)["model"]["g_optimizer"]["init_args"]["lr"] == 0.01
    # Adam's moments carried on: the step count is the whole run's, not the resume's.
    steps = {int(state["step"]) for state in after["optimizer_states"][0]["state"].values()}
    assert steps == {6}


def test_a_refused_change_leaves_the_run_as_it_was_and_a_second_resume_still_works(run, capsys):
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    more_critics = ["--model.n_critic", "3"]
    assert main(fit("--ckpt_path", "last", "--trainer.max_steps", "6", *more_critics)) == 2
    assert "model.n_critic (1 -> 3)" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files

    assert main(fit("--ckpt_path", "last", "--trainer.max_steps", "6")) == 0
    assert checkpoint(run)["global_step"] == 6
    assert [r["step"] for r in resumes(run)] == [3]  # the refused resume left no line
