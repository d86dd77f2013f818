"""Every trick recipe trains for a few steps and loads back; every trick has a recipe."""

from pathlib import Path

import pytest
import yaml

import gan_tricks.tricks
from gan_tricks.cli import main
from gan_tricks.run import load_run

ROOT = Path(__file__).resolve().parent.parent
TRICK_RECIPES = sorted((ROOT / "recipes" / "tricks").glob("*.yaml"))


def trick_classes(recipe: Path) -> set[str]:
    config = yaml.safe_load(recipe.read_text())
    tricks = (config.get("model") or {}).get("tricks") or []
    return {c["class_path"].rsplit(".", 1)[-1] for c in tricks}


def test_every_trick_has_a_recipe():
    used = set().union(*(trick_classes(recipe) for recipe in TRICK_RECIPES))
    tricks = set(gan_tricks.tricks.__all__) - {"PHASES", "Trick"}
    assert tricks <= used, f"tricks without a recipe: {sorted(tricks - used)}"


@pytest.mark.parametrize("recipe", TRICK_RECIPES, ids=lambda p: p.stem)
def test_trick_recipe_trains_and_loads(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(recipe), "--name", "r", "--wandb", "off"]
    args += ["--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    module, _ = load_run(tmp_path / "r" / "checkpoints" / "last.ckpt")
    samples = module.sample(8, seed=0)
    assert len(samples) == 8 and samples.isfinite().all()


STACKED_DIGITS = ROOT / "recipes" / "stacked_digits.yaml"
OVERLAYS = ROOT / "benchmarks" / "overlays"
STACKED_DIGITS_OVERLAYS = sorted((OVERLAYS / "stacked_digits").glob("*.yaml"))


def fit_overlay(base: Path, overlay: Path, tmp_path: Path, monkeypatch) -> dict:
    """Two iterations of ``base`` with ``overlay`` on top; the run's saved config."""
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(base), "--config", str(overlay)]
    args += ["--name", "r", "--wandb", "off", "--data.init_args.num_samples", "256"]
    args += ["--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.default_root_dir", str(tmp_path)]
    assert main(args) == 0
    return yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())


def test_the_stacked_digits_overlays_exist():
    assert len(STACKED_DIGITS_OVERLAYS) >= 10


@pytest.mark.parametrize("overlay", STACKED_DIGITS_OVERLAYS, ids=lambda p: p.stem)
def test_stacked_digits_overlay_switches_its_trick_on(overlay, tmp_path, monkeypatch):
    """Each overlay of the stacked-digits trick table merges into the base recipe and trains."""
    saved = fit_overlay(STACKED_DIGITS, overlay, tmp_path, monkeypatch)
    expected = yaml.safe_load(overlay.read_text())
    # Overlays append to a recipe's tricks (`tricks+:`) instead of replacing them.
    model = expected.get("model") or {}
    assert "tricks" not in model
    for trick in model.get("tricks+") or []:
        assert trick["class_path"] in {c["class_path"] for c in saved["model"]["tricks"]}
    for network, options in model.items():
        if network == "tricks+":
            continue
        if isinstance(options, dict):
            for key, value in options["init_args"].items():
                assert saved["model"][network]["init_args"][key] == value
        else:
            assert saved["model"][network] == options
    assert saved["data"]["class_path"].endswith("StackedDigits")


STACKED_DIGITS_TRICKS = ROOT / "recipes" / "stacked_digits_tricks.yaml"
RECIPE_ABLATION = sorted((OVERLAYS / "stacked_digits_tricks").glob("*.yaml"))


@pytest.mark.parametrize("overlay", RECIPE_ABLATION, ids=lambda p: p.stem)
def test_each_part_of_the_stacked_digits_recipe_can_be_taken_out(overlay, tmp_path, monkeypatch):
    """The ablation of the README's stacked-digits recipe: each overlay trains on the recipe."""
    saved = fit_overlay(STACKED_DIGITS_TRICKS, overlay, tmp_path, monkeypatch)
    recipe = yaml.safe_load(STACKED_DIGITS_TRICKS.read_text())
    expected = yaml.safe_load(overlay.read_text())
    model = dict(expected.get("model") or {})
    tricks = model.pop("tricks", recipe["model"]["tricks"])
    assert saved["model"]["tricks"] == tricks  # [] takes packing out
    changed = {**model, "data": expected.get("data")}
    saved_parts = {**saved["model"], "data": saved["data"]}
    for part, options in changed.items():
        if options is None:  # no_decay: the schedulers are gone
            assert part == "data" or saved_parts[part] is None
            continue
        assert saved_parts[part]["class_path"] == options.get(
            "class_path", saved_parts[part]["class_path"]
        )
        for key, value in (options.get("init_args") or {}).items():
            assert saved_parts[part]["init_args"][key] == value
