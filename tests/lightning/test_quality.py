"""QualityProbe: the ground truth the failure zoo scores detectors against."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from gan_tricks.cli import main
from gan_tricks.data import Toy2D
from gan_tricks.engine.recorder import EVALUATION_FILE
from gan_tricks.errors import ConfigError
from gan_tricks.lightning import QualityProbe, read_quality
from gan_tricks.run import evaluate_samples
from gan_tricks.testing import fit_briefly, tiny_gan_module

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "benchmarks" / "overlays" / "monitors"


def ring8():
    return Toy2D(name="ring8", batch_size=32, batches_per_epoch=8)


def test_the_probe_measures_on_schedule_and_at_the_end(tmp_path):
    module = tiny_gan_module()
    probe = QualityProbe(every=5, num_samples=500)
    fit_briefly(module, 12, [probe], data=ring8(), default_root_dir=tmp_path, max_epochs=-1)
    rows = read_quality(tmp_path)
    assert [row["step"] for row in rows] == [5, 10, 12]
    assert all(row["num_modes"] == 8 and row["num_samples"] == 500 for row in rows)
    final = evaluate_samples(module, ring8(), 500, seed=0)
    assert rows[-1]["modes_covered"] == final["modes_covered"]
    assert rows[-1]["high_quality"] == pytest.approx(final["high_quality"])


def test_the_probe_leaves_training_unchanged(tmp_path):
    weights = []
    for callbacks in ([], [QualityProbe(every=3, num_samples=100)]):
        module = tiny_gan_module()
        fit_briefly(module, 10, callbacks, data=ring8(), default_root_dir=tmp_path)
        weights.append(torch.cat([p.detach().flatten() for p in module.parameters()]))
    assert torch.equal(*weights)


@pytest.mark.parametrize("kwargs", [{"every": 0}, {"num_samples": 1}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        QualityProbe(**kwargs)


def test_the_probe_overlay_logs_quality_beside_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(ROOT / "recipes" / "ring8.yaml")]
    args += ["--config", str(OVERLAYS / "quality_probe.yaml"), "--name", "r", "--wandb", "off"]
    args += ["--trainer.max_steps", "100", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    assert [row["step"] for row in read_quality(tmp_path / "r")] == [100]
    header = (tmp_path / "r" / "metrics.csv").read_text().splitlines()[0]
    assert "quality/modes_covered" in header and "quality/high_quality" in header


def test_the_final_evaluation_in_process_is_what_evaluate_prints_for_the_checkpoint(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    overlay = tmp_path / "probe.yaml"
    probe = {"class_path": "gan_tricks.lightning.QualityProbe"}
    probe["init_args"] = {"every": 50, "num_samples": 200, "final_evaluation": True}
    overlay.write_text(yaml.safe_dump({"trainer": {"callbacks+": [probe]}}))
    args = ["fit", "--config", str(ROOT / "recipes" / "ring8.yaml"), "--config", str(overlay)]
    args += ["--name", "r", "--wandb", "off", "--trainer.max_steps", "30"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    in_process = json.loads((tmp_path / "r" / EVALUATION_FILE).read_text())
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "r" / "checkpoints" / "last.ckpt")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert in_process["step"] == 30 and in_process["num_samples"] == 2500  # the protocol's
    for key in ("modes_covered", "high_quality", "reverse_kl", "num_samples"):
        assert in_process[key] == printed[key], key
