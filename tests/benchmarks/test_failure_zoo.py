"""benchmarks/failure_zoo.py: its recipes, its ground truth and its scoring."""

import json
from pathlib import Path

import pytest
import yaml

from gan_tricks.cli import main
from gan_tricks.lightning.quality import QUALITY_FILE
from gan_tricks.monitors import ALARMS_FILE, Alarm

ROOT = Path(__file__).resolve().parents[2]


FAILURE_RECIPES = sorted((ROOT / "recipes" / "failures").glob("*.yaml"))


def test_the_zoo_has_eight_failures_on_both_kinds_of_data_each_with_a_detector(zoo):
    recipes = zoo.failure_recipes()
    assert len(recipes) == len(FAILURE_RECIPES) >= 8
    assert {recipe.is_2d for recipe in recipes} == {True, False}
    for recipe in recipes:
        assert recipe.caught_by and set(recipe.caught_by) <= set(zoo.DETECTORS)
    # Each control is a recipe of the catalogue with data the probe can score.
    assert all((ROOT / path).is_file() for path in zoo.CONTROLS)


@pytest.mark.parametrize("path", FAILURE_RECIPES, ids=lambda path: path.stem)
def test_each_failure_recipe_trains_with_the_detectors_and_the_probe(
    zoo, path, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (recipe,) = [recipe for recipe in zoo.failure_recipes() if recipe.path == path]
    kind = "2d" if recipe.is_2d else "images"
    args = ["fit", "--config", str(recipe.path)]
    for overlay in zoo.OVERLAY_FILES[kind]:
        args += ["--config", str(zoo.OVERLAYS / overlay)]
    args += ["--name", "r", "--wandb", "off", "--trainer.max_steps", "3"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())

    def names(entries):
        return {entry["class_path"].rsplit(".", 1)[-1] for entry in entries}

    assert set(zoo.DETECTORS) <= names(saved["model"]["detectors"])
    assert "QualityProbe" in names(saved["trainer"]["callbacks"])
    assert (tmp_path / "r" / QUALITY_FILE).is_file()  # measured once, at the end


def measurement(step, modes, num_modes=8, **extra):
    return {"step": step, "modes_covered": modes, "num_modes": num_modes, **extra}


def test_a_measurement_fails_on_modes_quality_readability_or_diversity(zoo):
    assert not zoo.is_failed(measurement(100, 8, high_quality=0.9))
    assert zoo.is_failed(measurement(100, 5, high_quality=0.9))  # under 3/4 of the modes
    assert zoo.is_failed(measurement(100, 8, high_quality=0.4))
    assert zoo.is_failed(measurement(100, 10, 10, num_samples=50, unreadable=50))
    assert zoo.is_failed(measurement(100, 10, 10, diversity_ratio=0.3))


def test_the_onset_is_the_start_of_the_failed_stretch_that_lasts(zoo):
    good, bad = {"high_quality": 0.9}, {"high_quality": 0.1}
    history = [measurement(s, 8, **q) for s, q in [(100, bad), (200, good), (300, bad), (400, bad)]]
    assert zoo.onset(history) == 300
    assert zoo.onset([*history, measurement(500, 8, **good)]) is None  # recovered: not failed


def write_run(folder, quality, alarms, steps=1000):
    folder.mkdir(parents=True)
    (folder / QUALITY_FILE).write_text("".join(json.dumps(q) + "\n" for q in quality))
    (folder / ALARMS_FILE).write_text("".join(a.to_json() + "\n" for a in alarms))
    (folder / "timing.json").write_text(json.dumps({"steps": steps}))


def test_scoring_catches_within_500_steps_and_counts_other_detectors(zoo, tmp_path):
    recipe = zoo.Recipe(ROOT / "recipes" / "failures" / "d_far_stronger.yaml", ("ModeCollapse",))
    quality = [measurement(s, 8 if s < 400 else 1, high_quality=0.9) for s in range(100, 1100, 100)]
    alarms = [
        Alarm(350, "LossOscillation", "warning", "m"),
        Alarm(800, "ModeCollapse", "error", "m"),
        Alarm(950, "ModeCollapse", "error", "m"),
    ]
    write_run(tmp_path / "a", quality, alarms)
    row = zoo.score_run(recipe, 0, tmp_path / "a")
    assert row["failed"] and row["onset"] == 400 and row["alarm_step"] == 800
    assert row["delay"] == 400 and row["caught"]
    assert json.loads(row["alarms"]) == {"LossOscillation": [350, 1], "ModeCollapse": [800, 2]}
    late = [Alarm(901, "ModeCollapse", "error", "m")]
    write_run(tmp_path / "b", quality, late)
    assert not zoo.score_run(recipe, 0, tmp_path / "b")["caught"]  # 501 steps after the onset


def test_the_tables_report_catches_and_false_alarms(zoo, tmp_path):
    failing = zoo.Recipe(ROOT / "recipes" / "failures" / "d_far_stronger.yaml", ("ModeCollapse",))
    control = zoo.Recipe(ROOT / "recipes" / "ring8_tricks.yaml", ())
    write_run(
        tmp_path / "f",
        [measurement(100, 1, high_quality=0.9)],
        [Alarm(150, "ModeCollapse", "error", "m")],
    )
    write_run(
        tmp_path / "c",
        [measurement(100, 8, high_quality=0.97)],
        [Alarm(700, "LossOscillation", "warning", "m")],
    )
    rows = [zoo.score_run(failing, 0, tmp_path / "f"), zoo.score_run(control, 0, tmp_path / "c")]
    table = zoo.matrix(rows)
    assert "**1/1 caught, worst +50**" in table and "**1 false**" in table
    summary = zoo.detector_summary(rows)
    assert "| ModeCollapse | d_far_stronger | 1/1 | +50 | +50 | 0 |" in summary
    assert "| LossOscillation | - | - | - | - | 1 |" in summary
    assert zoo.verdict(rows).startswith("**Target not met**")
    assert "ring8_tricks seed 0" in zoo.verdict(rows)


def test_mode_coverage_is_judged_against_what_as_many_perfect_samples_reach(zoo):
    stacked = {"step": 100, "num_modes": 1000, "num_samples": 2000}
    assert zoo.reachable_modes(stacked) == pytest.approx(1000 * (1 - 0.999**2000))  # ~865
    assert not zoo.is_failed({**stacked, "modes_covered": 700})  # 0.81 of what is reachable
    assert zoo.is_failed({**stacked, "modes_covered": 600})
    assert zoo.reachable_modes({"num_modes": 8, "num_samples": 2500}) == pytest.approx(8)


def test_a_repeated_alarm_is_counted_from_the_latest_one_in_time(zoo, tmp_path):
    # Failed at 750, recovered at 1250, failed for good from 2250: the alarm repeated at 2738
    # (every cooldown) is the one that reports the failure that stayed.
    recipe = zoo.Recipe(ROOT / "recipes" / "failures" / "d_far_stronger.yaml", ("ModeCollapse",))
    modes = {250: 8, 750: 1, 1250: 8, 2250: 1, 2750: 1}
    quality = [measurement(s, m, high_quality=0.9) for s, m in modes.items()]
    alarms = [Alarm(s, "ModeCollapse", "error", "m") for s in (738, 1738, 2738, 3738)]
    write_run(tmp_path / "a", quality, alarms)
    row = zoo.score_run(recipe, 0, tmp_path / "a")
    assert row["onset"] == 2250 and row["alarm_step"] == 2738 and row["delay"] == 488
