"""The recipes and overlays inside the package: listed, found by name, run from any folder."""

import subprocess
import sys
from pathlib import Path

import pytest

from gan_tricks import __version__
from gan_tricks.cli import main
from gan_tricks.packaged import RECIPES, find_recipe, listing, recipe_names, summary

ROOT = Path(__file__).resolve().parent.parent


def test_every_recipe_and_overlay_is_listed_with_one_line():
    names = recipe_names()
    assert {"ring8", "tricks/r1", "failures/mode_collapse", "overlays/grid25/r1"} <= set(names)
    assert len(names) == len(list(RECIPES.rglob("*.yaml")))
    text = listing()
    for name in names:
        (line,) = [line for line in text.splitlines() if line.split()[:1] == [name]]
        assert len(line.split(maxsplit=1)[1]) <= 96
    assert summary(RECIPES / "ring8.yaml").startswith("The plain GAN baseline on ring8")
    assert summary(RECIPES / "dcgan_mnist.yaml").startswith(
        "DCGAN on MNIST at 32x32 (Radford et al. 2016)"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ring8", "ring8.yaml"),
        ("ring8.yaml", "ring8.yaml"),
        ("recipes/ring8.yaml", "ring8.yaml"),
        ("tricks/r1", "tricks/r1.yaml"),
        ("benchmarks/overlays/grid25/r1.yaml", "overlays/grid25/r1.yaml"),
    ],
)
def test_a_packaged_recipe_is_found_by_name_or_by_its_repository_path(name, expected):
    assert find_recipe(name) == RECIPES / expected


@pytest.mark.parametrize("name", ["nowhere", "../pyproject", "/etc/passwd", "tricks/../../cli"])
def test_nothing_outside_the_recipes_is_found(name):
    assert find_recipe(name) is None


def test_fit_takes_a_packaged_recipe_by_name_from_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", "ring8", "--config", "overlays/monitors/all_detectors_2d"]
    args += ["--name", "r", "--wandb", "off", "--trainer.max_steps", "3"]
    args += ["--trainer.enable_progress_bar", "false"]
    assert main(args) == 0
    saved = (tmp_path / "runs" / "r" / "config.yaml").read_text()
    assert "Toy2D" in saved and "ModeCollapse" in saved


def test_an_unknown_recipe_name_is_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "ring9"]) == 2
    assert "gan-tricks recipes lists them" in capsys.readouterr().err


def test_version_and_the_recipe_listing(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gan-tricks {__version__}"
    assert main(["recipes"]) == 0
    assert "tricks/r1" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["--help"], ["recipes"], ["--version"]])
def test_help_recipes_and_version_import_neither_torch_nor_lightning(command):
    script = (
        "import sys; from gan_tricks.cli import main; main(sys.argv[1:]); "
        "heavy = {'torch', 'pytorch_lightning', 'lightning', 'jsonargparse'} & set(sys.modules); "
        "print('heavy:', sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


def test_ablate_finds_the_packaged_overlays_of_a_packaged_base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["ablate", "--config", "grid25", "--tricks", "r1,packing", "--seeds", "1"]
    assert main([*args, "--wandb-sweep", "--out", str(tmp_path / "a")]) == 0
    sweep = (tmp_path / "a" / "sweep.yaml").read_text()
    assert "r1+packing" in sweep
