"""Loading a stored config imports only the package's own classes and those the user allows.

A practitioner's own generator (a module in the test's folder) trains with ``fit``; ``sample``,
``evaluate`` and ``export`` then refuse its checkpoint in one sentence until the class is
allowed with ``--allow-class`` or ``GAN_TRICKS_ALLOW_CLASSES``. A checkpoint whose config was
edited to name a module that acts on import never gets that module imported.
"""

import sys
from pathlib import Path

import pytest
import torch

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parents[2]
RING8 = str(ROOT / "recipes" / "ring8.yaml")
QUIET = ["--wandb", "off", "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false"]
MY_NETS = '''
from gan_tricks.models import MLPGenerator


class MyGenerator(MLPGenerator):
    """A practitioner's own generator."""
'''
# A module that acts when it is imported: the marker file says it was.
HOSTILE = """
from pathlib import Path
Path(__file__).with_name("imported.marker").write_text("ran")
from gan_tricks.models import MLPGenerator as Generator
"""


@pytest.fixture
def own_run(tmp_path, monkeypatch) -> Path:
    """The last.ckpt of a ring8 run whose generator is ``my_nets.MyGenerator``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GAN_TRICKS_ALLOW_CLASSES", raising=False)
    (tmp_path / "my_nets.py").write_text(MY_NETS)
    (tmp_path / "hostile.py").write_text(HOSTILE)
    own = ["--model.generator.class_path", "my_nets.MyGenerator"]
    assert main(["fit", "--config", RING8, "--name", "r", *QUIET, *own]) == 0
    return tmp_path / "runs" / "r" / "checkpoints" / "last.ckpt"


COMMANDS = {
    "sample": lambda ckpt: ["sample", str(ckpt), "-n", "8", "-o", "out.npy"],
    "evaluate": lambda ckpt: ["evaluate", str(ckpt), "-n", "64"],
    "export": lambda ckpt: ["export", str(ckpt), "-o", "g.safetensors"],
}


@pytest.mark.parametrize("command", COMMANDS.keys())
def test_a_class_outside_the_package_is_refused_until_allowed(command, own_run, capsys):
    before = sorted(p.name for p in Path.cwd().iterdir())

    assert main(COMMANDS[command](own_run)) == 2

    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert "'my_nets.MyGenerator', which is not one of gan-tricks' own classes" in line
    assert "--allow-class my_nets.MyGenerator" in line
    assert sorted(p.name for p in Path.cwd().iterdir()) == before  # nothing written
    assert main([*COMMANDS[command](own_run), "--allow-class", "my_nets"]) == 0


def test_the_environment_variable_allows_a_package_for_every_command(own_run, monkeypatch):
    monkeypatch.setenv("GAN_TRICKS_ALLOW_CLASSES", "other_pkg, my_nets")
    assert main(COMMANDS["export"](own_run)) == 0
    # The exported file names the class too: loading it is checked the same way.
    assert main(["sample", "g.safetensors", "-n", "8", "-o", "out.npy"]) == 0
    monkeypatch.delenv("GAN_TRICKS_ALLOW_CLASSES")
    assert main(["sample", "g.safetensors", "-n", "8", "-o", "again.npy"]) == 2
    assert not Path("again.npy").exists()


def test_a_checkpoint_edited_to_name_another_module_never_imports_it(own_run, capsys):
    checkpoint = torch.load(own_run, map_location="cpu", weights_only=True)
    checkpoint["gan_tricks_config"]["model"]["generator"]["class_path"] = "hostile.Generator"
    edited = own_run.with_name("edited.ckpt")
    torch.save(checkpoint, edited)
    sys.modules.pop("hostile", None)

    for command in COMMANDS.values():
        assert main(command(edited)) == 2
        assert "'hostile.Generator'" in capsys.readouterr().err
    assert not Path("imported.marker").exists()
    assert "hostile" not in sys.modules
