"""The `gan-tricks` command end to end: fit, sample, evaluate, and its one-sentence errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.wandb_files import finished_wandb_records

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parent.parent
RING8 = str(ROOT / "recipes" / "ring8.yaml")
DIGITS = str(ROOT / "recipes" / "digits.yaml")
FAST = ["--trainer.max_steps", "30", "--trainer.enable_progress_bar", "false"]


def gan_tricks(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gan_tricks.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"WANDB_MODE": "offline", "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


@pytest.fixture(scope="module")
def ring8_run(tmp_path_factory) -> Path:
    """One short real run of the ring8 recipe, with W&B offline, shared by the tests below."""
    root = tmp_path_factory.mktemp("runs")
    result = gan_tricks(
        "fit", "--config", RING8, "--name", "ring8-test",
        "--trainer.default_root_dir", str(root), *FAST, cwd=root,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (root / "fit.stderr").write_text(result.stderr)
    return root / "ring8-test"


def test_fit_closes_with_a_summary_and_without_lightnings_start_up_lines(ring8_run):
    said = (ring8_run.parent / "fit.stderr").read_text()
    summary = said[said.index("gan-tricks: 30 iterations in") :]
    assert f"next: gan-tricks report {ring8_run}" in summary
    assert f"gan-tricks evaluate {ring8_run / 'checkpoints' / 'last.ckpt'}" in summary
    assert "wandb sync " + str(ring8_run / "wandb" / "offline-run-") in summary
    assert "last D loss" in summary
    for noise in ("GPU available", "TPU available", "litlogger"):
        assert noise not in said


def test_fit_writes_a_run_folder(ring8_run):
    assert (ring8_run / "checkpoints" / "last.ckpt").is_file()
    assert (ring8_run / "config.yaml").is_file()
    assert "gan_tricks.models.MLPGenerator" in (ring8_run / "config.yaml").read_text()
    for picture in ("samples.png", "training.png"):
        assert Image.open(ring8_run / picture).size[0] > 100
    header = (ring8_run / "metrics.csv").read_text().splitlines()[0]
    assert "train/d_loss" in header and "train/g_grad_norm" in header
    timing = json.loads((ring8_run / "timing.json").read_text())
    steps = int(FAST[FAST.index("--trainer.max_steps") + 1])
    assert timing["steps"] == steps
    assert timing["seconds_per_step"] == pytest.approx(timing["train_seconds"] / steps, rel=1e-3)


def test_wandb_runs_offline_without_credentials_and_writes_run_files(ring8_run):
    runs = list((ring8_run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (run_file,) = runs[0].glob("run-*.wandb")
    # The real offline file, read record by record (no mock): every logged row is there.
    rows = []
    for record in finished_wandb_records(run_file, "history"):
        items = record.history.item
        rows.append({"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in items})
    logged = [row for row in rows if "train/d_loss" in row]
    assert logged and all(isinstance(row["train/d_loss"], float) for row in logged)
    assert {"train/g_loss", "train/d_real", "train/d_grad_norm"} <= set(logged[-1])
    # Each snapshot: the sample picture and histograms of D's logits on fakes and reals.
    snapshots = [row for row in rows if "samples/_type" in row]
    pictures = list((ring8_run / "samples").glob("step_*.png"))
    assert len(snapshots) == len(pictures) >= 8
    for row in snapshots:
        assert row["samples/_type"] == "image-file"
        assert (runs[0] / "files" / row["samples/path"]).is_file()
        for side in ("real", "fake"):
            assert row[f"d_output/{side}/_type"] == "histogram"
            assert sum(row[f"d_output/{side}/values"]) == 2500  # every point's logit


def test_the_wandb_run_config_is_the_resolved_recipe_and_the_tricks_are_tags(tmp_path):
    overlay = tmp_path / "tricks.yaml"
    overlay.write_text(
        "model:\n  tricks+:\n    - class_path: gan_tricks.tricks.GradientPenalty\n"
        "      init_args: {kind: r1, weight: 0.1}\n"
        "  detectors+:\n    - class_path: gan_tricks.monitors.ModeCollapse\n"
    )
    result = gan_tricks(
        "fit", "--config", RING8, "--config", str(overlay), "--name", "config",
        "--trainer.default_root_dir", str(tmp_path), "--model.g_optimizer.init_args.lr", "0.005",
        "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (run_file,) = (tmp_path / "config" / "wandb").glob("offline-run-*/run-*.wandb")
    # The run record holds the config given at init; config records what is added later.
    (run,) = finished_wandb_records(run_file, "run")
    updates = [*run.run.config.update]
    updates += [i for r in finished_wandb_records(run_file, "config") for i in r.config.update]
    config = {item.key: json.loads(item.value_json) for item in updates}
    model = config["model"]
    assert model["g_optimizer"]["init_args"]["lr"] == 0.005
    assert model["d_optimizer"]["init_args"]["lr"] == 0.0005
    assert model["generator"]["class_path"] == "gan_tricks.models.MLPGenerator"
    assert config["tricks"] == ["GradientPenalty"] and config["detectors"] == ["ModeCollapse"]
    assert list(run.run.tags) == ["GradientPenalty"]


def test_sample_npy_shape_and_png(ring8_run, tmp_path):
    checkpoint = ring8_run / "checkpoints" / "last.ckpt"
    assert main(["sample", str(checkpoint), "-n", "100", "-o", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (100, 2) and samples.dtype == np.float32
    assert main(["sample", str(checkpoint), "-n", "100", "-o", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 100


def test_sample_is_reproducible_for_a_seed(ring8_run, tmp_path):
    checkpoint = str(ring8_run / "checkpoints" / "last.ckpt")
    for name in ("a", "b"):
        main(["sample", checkpoint, "-n", "50", "-o", str(tmp_path / f"{name}.npy")])
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_sample_truncation_keeps_codes_near_the_centre(ring8_run, tmp_path):
    checkpoint = str(ring8_run / "checkpoints" / "last.ckpt")
    main(["sample", checkpoint, "-n", "300", "-o", str(tmp_path / "t.npy"), "--truncation", "0.3"])
    main(["sample", checkpoint, "-n", "300", "-o", str(tmp_path / "f.npy")])
    truncated, free = np.load(tmp_path / "t.npy"), np.load(tmp_path / "f.npy")
    # Codes squeezed into [-0.3, 0.3]^2 map to a smaller region than free codes.
    assert truncated.std(axis=0).sum() < free.std(axis=0).sum()


def test_evaluate_prints_mixture_metrics_as_json(ring8_run, capsys):
    assert main(["evaluate", str(ring8_run / "checkpoints" / "last.ckpt")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["num_samples"] == 2500 and metrics["num_modes"] == 8
    assert 0 <= metrics["modes_covered"] <= 8 and 0 <= metrics["high_quality"] <= 1
    assert metrics["wall_time_s"] >= 0


def test_existing_run_folder_is_not_overwritten(ring8_run):
    before = (ring8_run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    result = gan_tricks(
        "fit", "--config", RING8, "--name", ring8_run.name,
        "--trainer.default_root_dir", str(ring8_run.parent), *FAST, cwd=ring8_run.parent,
    )  # fmt: skip
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert (ring8_run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_overwrite_replaces_the_whole_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", RING8, "--name", "r", "--wandb", "off", *FAST]
    args += ["--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    (tmp_path / "r" / "alarms.jsonl").write_text("{}\n")  # something the next run must not keep
    assert main([*args, "--overwrite", "true", "--trainer.max_steps", "20"]) == 0
    # One checkpoint, of the second run: Lightning would have written last-v1.ckpt beside
    # the first run's last.ckpt, and `gan-tricks evaluate last.ckpt` would read the old one.
    assert [p.name for p in (tmp_path / "r" / "checkpoints").iterdir()] == ["last.ckpt"]
    checkpoint = torch.load(tmp_path / "r" / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 20
    assert not (tmp_path / "r" / "alarms.jsonl").exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("keep me")
    args = ["fit", "--config", RING8, "--name", "notes", "--overwrite", "true", *FAST]
    assert main([*args, "--trainer.default_root_dir", str(tmp_path)]) == 2
    assert "does not look like a gan-tricks run folder" in capsys.readouterr().err
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "keep me"


# The table of bad inputs (one sentence, exit code 2, no run folder) is
# tests/reliability/test_bad_input.py.


def test_the_console_command_exits_2_without_traceback(tmp_path):
    result = gan_tricks("fit", "--config", RING8, "--model.loss", "vanilla", cwd=tmp_path)
    assert result.returncode == 2
    assert "loss must be one of" in result.stderr and "Traceback" not in result.stderr


def test_help_at_every_level(capsys):
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert all(command in usage for command in ("fit", "sample", "evaluate"))
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    fit_help = capsys.readouterr().out
    for option in ("--model.loss", "--model.n_critic", "--trainer.max_steps", "--ckpt_path"):
        assert option in fit_help
    for command in ("sample", "evaluate"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "checkpoint" in capsys.readouterr().out


def test_image_recipe_fits_and_samples_images_in_range(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", DIGITS, "--name", "digits", "--wandb", "off", *FAST]
    assert main([*args, "--trainer.max_steps", "3"]) == 0
    checkpoint = tmp_path / "runs" / "digits" / "checkpoints" / "last.ckpt"
    assert main(["sample", str(checkpoint), "-n", "12", "-o", "s.npy"]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (12, 1, 16, 16) and samples.dtype == np.float32
    assert samples.min() >= -1 and samples.max() <= 1
    assert main(["sample", str(checkpoint), "-n", "16", "-o", "grid.png"]) == 0
    # 4 x 4 images of 16 px, 1 px padding: 69 px, scaled by a whole factor to 512 px or more.
    assert Image.open(tmp_path / "grid.png").size == (69 * 8, 69 * 8)


def test_mlps_on_8x8_stacked_digits_fit_evaluate_and_export(tmp_path, monkeypatch, capsys):
    """The stacked-digits target recipe: MLPs that make and read images, packed pairs."""
    monkeypatch.chdir(tmp_path)
    recipe = str(ROOT / "recipes" / "stacked_digits_tricks.yaml")
    assert main(["fit", "--config", recipe, "--name", "s", "--wandb", "off", *FAST]) == 0
    checkpoint = tmp_path / "runs" / "s" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    assert main(["evaluate", str(checkpoint), "-n", "500"]) == 0
    metrics = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert metrics["data"] == "StackedDigits" and metrics["num_modes"] == 1000
    assert metrics["num_samples"] == 500 and metrics["unreadable"] == 0
    assert 1 <= metrics["modes_covered"] <= 500
    assert main(["sample", str(checkpoint), "-n", "6", "-o", "s.npy"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (6, 3, 8, 8)
    assert main(["export", str(checkpoint), "-o", "g.safetensors"]) == 0
    from gan_tricks.export import load_generator, sample_exported

    generator, latent = load_generator(tmp_path / "g.safetensors")
    assert generator.out_shape == (3, 8, 8)
    assert sample_exported(generator, latent, 4, seed=0).shape == (4, 3, 8, 8)


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_parses(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(recipe), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path: gan_tricks.models." in capsys.readouterr().out


def test_resume_with_ckpt_path_last_continues_the_same_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["fit", "--config", RING8, "--name", "resumed", "--wandb", "off", *FAST]
    assert main([*base, "--trainer.max_steps", "10"]) == 0
    checkpoint = tmp_path / "runs" / "resumed" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 10
    assert main([*base, "--trainer.max_steps", "25", "--ckpt_path", "last"]) == 0
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 25


def test_the_progress_bar_counts_iterations_toward_max_steps_across_epochs(tmp_path):
    # 3 epochs of 10 batches: one bar of 30 iterations, with its rate and time left.
    result = gan_tricks(
        "fit", "--config", RING8, "--name", "bar", "--trainer.default_root_dir", str(tmp_path),
        "--trainer.max_steps", "30", "--data.init_args.batches_per_epoch", "10",
        "--wandb", "off", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    final = result.stdout.replace("\r", "\n").strip().splitlines()
    last = [line for line in final if line.startswith("Training")][-1]
    assert "30/30" in last and "it/s" in last and "d_loss" in last
    assert "Epoch" not in result.stdout and "v_num" not in result.stdout


def test_wandb_online_without_a_reachable_server_logs_offline_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gan_tricks.cli", "fit", "--config", RING8, "--name", "online",
         "--trainer.default_root_dir", str(tmp_path), "--wandb", "online", *FAST],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WANDB_API_KEY": "x" * 40,
             "WANDB_BASE_URL": "http://127.0.0.1:9"},  # a port nothing listens on
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("cannot be reached; this run logs offline") == 1
    assert list((tmp_path / "online" / "wandb").glob("offline-run-*/run-*.wandb"))
