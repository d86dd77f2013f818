"""Detectors in a recipe: the real `gan-tricks fit`, its run folder and its offline W&B files."""

from pathlib import Path

import pytest
import yaml
from support.wandb_files import finished_wandb_records

from gan_tricks.cli import main
from gan_tricks.monitors import read_alarms

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "benchmarks" / "overlays" / "monitors"


@pytest.mark.parametrize(
    ("recipe", "overlay"), [("digits", "all_detectors"), ("ring8_tricks", "all_detectors_2d")]
)
def test_every_detector_runs_in_a_fit(recipe, overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe, overlay = ROOT / "recipes" / f"{recipe}.yaml", OVERLAYS / f"{overlay}.yaml"
    args = ["fit", "--config", str(recipe), "--config", str(overlay), "--name", "r"]
    args += ["--wandb", "off", "--trainer.max_steps", "12", "--trainer.log_every_n_steps", "5"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    listed = {c["class_path"] for c in yaml.safe_load(overlay.read_text())["model"]["detectors+"]}
    ran = {c["class_path"] for c in saved["model"]["detectors"]}
    assert listed == ran
    assert len(listed) == 8
    # The overlay adds detectors and keeps the recipe's own tricks (ring8_tricks packs pairs).
    own = yaml.safe_load(recipe.read_text())["model"].get("tricks") or []
    assert {c["class_path"] for c in own} <= {
        c["class_path"] for c in saved["model"]["tricks"] or []
    }
    header = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    assert "monitor/g_grad_max_layer" in header


def test_a_winning_discriminator_is_reported_in_the_run_folder_and_in_wandb(
    tmp_path, monkeypatch, fit_with_a_winning_discriminator
):
    monkeypatch.chdir(tmp_path)
    fit_with_a_winning_discriminator(
        tmp_path, "{window: 30, warmup: 0, action: stop}",
        "--wandb", "offline", "--trainer.max_steps", "400",
    )  # fmt: skip
    (alarm,) = read_alarms(tmp_path / "r")
    assert alarm.detector == "DiscriminatorOverpowering" and alarm.step < 400
    assert alarm.signals["p_real"] > 0.9 or alarm.signals["d_loss"] < 0.05
    (run_file,) = (tmp_path / "r").glob("wandb/offline-run-*/run-*.wandb")
    (record,) = finished_wandb_records(run_file, "alert")
    assert record.alert.title == f"DiscriminatorOverpowering at step {alarm.step}"
    assert record.alert.level == "ERROR"
