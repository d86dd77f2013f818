"""Every code block of the README and of the docs' guides and benchmark pages is run: Python
blocks as they are, shell commands for real (trainings shortened) or as dry runs (benchmarks,
make targets), YAML blocks as overlays of a recipe, the layout block against the package's files.

Shortened means: ``gan-tricks fit`` gets ``--trainer.max_steps 40`` appended (a later value
wins) and Python blocks have their ``max_steps=N`` cut to 30; benchmarks are checked with
``--dry-run`` (every recipe parses with the block's overrides), ``gan-tricks ablate`` with
``--wandb-sweep`` (the design and its overlays resolve; nothing trains) and ``make`` targets
with ``make -n``.
"""

import contextlib
import io
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml
from torchvision.io import write_png

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs" / "guides").glob("*.md")),
    *sorted((ROOT / "docs" / "benchmarks").glob("*.md")),
]
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", flags=re.MULTILINE | re.DOTALL)
BLOCKS = [block for page in PAGES for block in BLOCK.findall(page.read_text())]
README_BLOCKS = BLOCK.findall((ROOT / "README.md").read_text())
RING8 = str(ROOT / "recipes" / "ring8.yaml")


def blocks(language: str) -> list[str]:
    return [code for lang, code in BLOCKS if lang == language]


def block_id(code: str) -> str:
    first = next(line for line in code.splitlines() if line.strip() and line[0] != "#")
    return first.strip()[:40]


def test_every_block_has_a_kind_this_file_runs():
    assert {lang for lang, _ in BLOCKS} <= {"python", "bash", "yaml", ""}
    assert len(BLOCKS) >= 10


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "pip install gan-tricks" in readme and "make demo" in readme and "make test" in readme
    assert {"python", "bash", "yaml"} <= {lang for lang, _ in README_BLOCKS}
    for page in PAGES:
        # Product pages: no development history.
        assert not re.search(r"\bissues? \d|the issue's", page.read_text()), page.name
    for link in re.findall(r"\]\(((?:docs|notebooks)/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


@pytest.mark.parametrize("code", blocks("python"), ids=block_id)
def test_python_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    shortened = re.sub(r"max_steps=\d+", "max_steps=30", code)
    exec(compile(shortened, "README.md", "exec"), {"__name__": "readme"})


def commands(code: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments and blanks dropped."""
    joined = code.replace("\\\n", " ")
    lines = [line.split("  #")[0].split(" # ")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """An empty folder that sees the repository's recipes and overlays, as the README's
    commands expect of the folder they run in, with the files they name: a folder of images
    and the README's overlay."""
    for name in ("recipes", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    images = tmp_path / "my_images"
    images.mkdir()
    for index in range(64):  # a batch of the image_folder recipe
        pixels = torch.randint(
            0, 256, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(index)
        )
        write_png(pixels, str(images / f"{index}.png"))
    (overlay,) = [code for lang, code in README_BLOCKS if lang == "yaml"]
    (tmp_path / "my_overlay.yaml").write_text(overlay)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    return tmp_path


def run_gan_tricks(args: list[str]) -> int:
    if args[0] == "ablate":  # dozens of trainings: check the design and overlays only
        args = [*args, "--wandb-sweep", "--out", "ablation-check"]
    if args[0] == "fit" and "--help" not in args:
        # 40 steps: past the recipes' first logging step, so that `report` has signals to draw;
        # a resume trains on, to 80.
        steps = "80" if "--ckpt_path" in args else "40"
        args = [*args, "--trainer.max_steps", steps, "--trainer.enable_progress_bar", "false"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return main(args)
    except SystemExit as done:  # --help
        return done.code


@pytest.mark.parametrize("code", blocks("bash"), ids=block_id)
def test_shell_block_runs(code, sandbox):
    for command in commands(code):
        words = shlex.split(command)
        if words[0] == "gan-tricks":
            assert run_gan_tricks(words[1:]) == 0, command
        elif words[:2] == ["pip", "install"]:
            # Not from the package index here: the name is the one this project installs as.
            assert words[2:] == [metadata.distribution("gan-tricks").metadata["Name"]], command
        elif words[0] == "make":
            result = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True)
            assert result.returncode == 0, (command, result.stderr)
        elif words[:2] == ["python", "benchmarks/recipes.py"]:
            result = subprocess.run(
                [sys.executable, *words[1:], "--dry-run"], cwd=ROOT, capture_output=True, text=True
            )
            assert result.returncode == 0, (command, result.stderr[-2000:])
        else:
            pytest.fail(f"the README runs a command this test does not know: {command}")


@pytest.mark.parametrize("code", blocks("yaml"), ids=block_id)
def test_yaml_block_is_a_valid_overlay(code, tmp_path, capsys):
    content = yaml.safe_load(code)
    if isinstance(content, list):  # a fragment of a detectors list
        content = {"model": {"detectors+": content}}
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump(content))
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", RING8, "--config", str(overlay), "--print_config"])
    assert done.value.code == 0, capsys.readouterr().err


def test_the_layout_block_names_files_that_exist():
    (layout,) = [code for lang, code in BLOCKS if lang == "" and code.startswith("gan_tricks/")]
    # Entries sit at two spaces; their descriptions continue at deeper indents.
    entries = [line.split()[0] for line in layout.splitlines() if re.match(r"  \S", line)]
    names = [name for name in entries if re.fullmatch(r"\w+(\.py|/)", name)]
    assert len(names) >= 10
    missing = [name for name in names if not (ROOT / "gan_tricks" / name).exists()]
    assert missing == []
