"""Bad input ends in one sentence that names what to change, exit code 2, and an untouched disk.

Every case runs the real command in-process (``main``), from an empty folder: afterwards there
must be no run folder, and an earlier run that the command could have replaced or resumed must
be exactly as it was. The README's list of faults counts the cases of this file.
"""

import json
from pathlib import Path

import pytest
import torch

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parents[2]
RING8 = str(ROOT / "recipes" / "ring8.yaml")
DIGITS = str(ROOT / "recipes" / "digits.yaml")
MNIST = str(ROOT / "recipes" / "dcgan_mnist.yaml")
QUIET = ["--wandb", "off", "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false"]
LONGER = ["--ckpt_path", "last", "--trainer.max_steps", "6"]  # a resume that trains on


def tricks(*entries: str) -> str:
    lines = ["model:", "  tricks+:"]
    for entry in entries:
        name, _, init = entry.partition(" ")
        lines.append(f"    - class_path: gan_tricks.tricks.{name}")
        if init:
            lines.append(f"      init_args: {init}")
    return "\n".join(lines) + "\n"


# Files the cases name as @file (written into the test's empty folder).
FILES = {
    "prose.yaml": "model: generator: an MLP\n",  # not YAML: a mapping value inside a value
    "list.yaml": "- fit\n- ring8\n",  # YAML, but not a mapping of settings
    "picture.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe",  # not text
    "unknown_key.yaml": "model:\n  n_critics: 5\n",
    "clip_and_penalty.yaml": tricks("WeightClipping", "GradientPenalty {kind: wgan-gp}"),
    "two_augmentations.yaml": tricks("DiffAugment", "AdaptiveAugment"),
    "penalty_on_batchnorm.yaml": tricks("GradientPenalty {kind: r1}"),
    "unknown_penalty.yaml": tricks("GradientPenalty {kind: r3}"),
    "garbage.ckpt": b"these bytes are not a checkpoint",
    # 9 levels of 8 aliases: 8**9 (134 million) values from 700 bytes
    "laughs.yaml": "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 8) if i else 'ha'}]\n" for i in range(10)
    ),
}

CONFIG_CASES = {
    # recipes that are not recipes
    "missing recipe": (["fit", "--config", "@nowhere.yaml"], "nowhere.yaml does not exist"),
    "recipe not YAML": (["fit", "--config", "@prose.yaml"], "is not valid YAML (line 1)"),
    "recipe a list": (["fit", "--config", "@list.yaml"], "is not a YAML mapping"),
    "recipe binary": (["fit", "--config", "@picture.yaml"], "is not valid YAML"),
    # unknown keys
    "unknown key in a recipe": (
        ["fit", "--config", RING8, "--config", "@unknown_key.yaml"],
        "n_critics",
    ),
    "unknown key on the command line": (
        ["fit", "--config", RING8, "--model.no_such_key", "1"],
        "no_such_key",
    ),
    "unknown trainer key": (["fit", "--config", RING8, "--trainer.max_stepz", "9"], "max_stepz"),
    # wrong types
    "text for an int": (["fit", "--config", RING8, "--model.n_critic", "many"], "model.n_critic"),
    "text for a width": (
        ["fit", "--config", RING8, "--model.generator.init_args.width", "x"],
        "generator.width",
    ),
    "text for a batch size": (
        ["fit", "--config", RING8, "--data.init_args.batch_size", "big"],
        "batch_size",
    ),
    # out-of-range values and bad choices
    "zero D steps": (["fit", "--config", RING8, "--model.n_critic", "0"], "n_critic must be"),
    "negative G rate": (
        ["fit", "--config", RING8, "--model.g_optimizer.init_args.lr", "-0.1"],
        "g_optimizer",
    ),
    "zero D rate": (
        ["fit", "--config", RING8, "--model.d_optimizer.init_args.lr", "0"],
        "must be > 0",
    ),
    "zero batch size": (
        ["fit", "--config", RING8, "--data.init_args.batch_size", "0"],
        "data.batch_size must be at least 1",
    ),
    "batch larger than the data": (
        ["fit", "--config", DIGITS, "--data.init_args.batch_size", "5000"],
        "lower data.batch_size",
    ),
    "unknown loss": (["fit", "--config", RING8, "--model.loss", "vanilla"], "loss must be one of"),
    "unknown penalty kind": (
        ["fit", "--config", RING8, "--config", "@unknown_penalty.yaml"],
        "model.tricks: GradientPenalty kind must be one of wgan-gp, one-sided, r1, r2, dragan "
        "(got 'r3')",
    ),
    "unknown latent distribution": (
        ["fit", "--config", RING8, "--model.latent.distribution", "cauchy"],
        "distribution must be one of gaussian, uniform, spherical (got 'cauchy')",
    ),
    "unknown toy data": (["fit", "--config", RING8, "--data.init_args.name", "moons"], "ring8"),
    "unknown W&B mode": (["fit", "--config", RING8, "--wandb", "maybe"], "--wandb must be one"),
    "checkpoint interval 0": (
        ["fit", "--config", RING8, "--checkpoint_every", "0"],
        "--checkpoint_every must be at least 1",
    ),
    # tricks that conflict
    "weight clipping with a penalty": (
        ["fit", "--config", RING8, "--config", "@clip_and_penalty.yaml"],
        "WeightClipping and GradientPenalty",
    ),
    "two augmentations": (
        ["fit", "--config", DIGITS, "--config", "@two_augmentations.yaml"],
        "AdaptiveAugment and DiffAugment",
    ),
    "penalty on a BatchNorm critic": (
        ["fit", "--config", DIGITS, "--config", "@penalty_on_batchnorm.yaml"],
        "needs a discriminator without BatchNorm",
    ),
    # data that is not there, images the model cannot make
    "missing data set, no network": (
        ["fit", "--config", MNIST, "--data.init_args.download", "false"],
        "MNIST was not found",
    ),
    "missing image folder": (
        [
            "fit",
            "--config",
            DIGITS,
            "--data",
            "gan_tricks.data.ImageFolder",
            "--data.path",
            "@no_images",
            "--data.image_size",
            "16",
            "--data.channels",
            "1",
        ],
        "is not an existing folder",
    ),
    "image size not a power of 2": (
        ["fit", "--config", DIGITS, "--model.generator.init_args.image_size", "28"],
        "image_size",
    ),
    "G's images bigger than the data's": (
        ["fit", "--config", DIGITS, "--model.generator.init_args.image_size", "32"],
        "the generator makes samples of shape (1, 32, 32) but the data has shape (1, 16, 16)",
    ),
    "G's channels unlike the data's": (
        ["fit", "--config", DIGITS, "--model.generator.init_args.channels", "3"],
        "the generator makes samples of shape (3, 16, 16)",
    ),
    # checkpoints
    "resume from a missing file": (
        ["fit", "--config", RING8, "--ckpt_path", "@gone.ckpt"],
        "gone.ckpt does not exist",
    ),
    "resume from a corrupt file": (
        ["fit", "--config", RING8, "--ckpt_path", "@garbage.ckpt"],
        "is not a readable checkpoint",
    ),
    "resume from a tensor file": (
        ["fit", "--config", RING8, "--ckpt_path", "@tensor.ckpt"],
        "holds a Tensor, not a checkpoint",
    ),
    "resume from a foreign dict": (
        ["fit", "--config", RING8, "--ckpt_path", "@foreign.ckpt"],
        "is not a checkpoint of a Lightning fit",
    ),
    "sample a missing file": (["sample", "@gone.ckpt", "-o", "x.png"], "does not exist"),
    "sample to an unknown format": (["sample", "@gone.ckpt", "-o", "x.jpg"], "must end in .npy"),
    "evaluate a corrupt file": (["evaluate", "@garbage.ckpt"], "is not a readable checkpoint"),
    "evaluate a foreign dict": (["evaluate", "@foreign.ckpt"], "holds no gan-tricks run config"),
    "export a corrupt file": (["export", "@garbage.ckpt", "-o", "g.safetensors"], "readable"),
    "sample a corrupt export": (
        ["sample", "@garbage.safetensors", "-o", "x.png"],
        "is not a readable safetensors file",
    ),
    "unknown command": (["frobnicate"], "unknown command"),
    # resource bombs
    "recipe of YAML aliases": (["fit", "--config", "@laughs.yaml"], "expands to more than"),
    "command-line value of YAML aliases": (
        ["fit", "--config", RING8, "--model.tricks", "@@laughs.yaml"],
        "expands to more than",
    ),
    # ordinary mistakes: training length, hardware, where the run goes
    "max_steps below -1": (["fit", "--config", RING8, "--trainer.max_steps", "-7"], "max_steps"),
    "max_steps 0": (["fit", "--config", RING8, "--trainer.max_steps", "0"], "at least 1"),
    "an accelerator this machine lacks": (
        ["fit", "--config", RING8, "--trainer.accelerator", "mps"],
        "torch finds no MPS device",
    ),
    "runs folder under a file": (
        ["fit", "--config", RING8, "--trainer.default_root_dir", "@garbage.ckpt/runs"],
        "is a file, not a folder",
    ),
    "runs folder nobody can write": (
        ["fit", "--config", RING8, "--trainer.default_root_dir", "/proc/gan-tricks-runs"],
        "cannot be written",
    ),
    "name longer than a folder name": (
        ["fit", "--config", RING8, "--name", "n" * 256],
        "at most 255",
    ),
    "name with a path separator": (
        ["fit", "--config", RING8, "--name", "runs2/mine"],
        "must be one folder name",
    ),
    "name that is the parent folder": (["fit", "--config", RING8, "--name", ".."], "one folder"),
    # outputs that cannot be written
    "sample into a file's folder": (
        ["sample", "@garbage.ckpt", "-o", "@garbage.ckpt/x.npy"],
        "is a file, not a folder",
    ),
    "sample onto a folder": (["sample", "@garbage.ckpt", "-o", "@a_folder.npy"], "is a folder"),
    "sample into /proc": (["sample", "@garbage.ckpt", "-o", "/proc/x.npy"], "cannot be written"),
    "export onto a folder": (
        ["export", "@garbage.ckpt", "-o", "@a_folder.safetensors"],
        "is a folder",
    ),
    "evaluate zero samples": (["evaluate", "@garbage.ckpt", "-n", "0"], "-n must be at least 1"),
    "sample with an infinite truncation": (
        ["sample", "@garbage.ckpt", "-o", "x.png", "--truncation", "inf"],
        "--truncation must be a finite number above 0",
    ),
    "sample with a negative truncation": (
        ["sample", "@garbage.ckpt", "-o", "x.png", "--truncation", "-1"],
        "--truncation must be",
    ),
    # hand-edited exports (each file below is a real export with one header entry changed)
    "export whose latent JSON is cut short": (
        ["sample", "@cut_json.safetensors", "-o", "x.npy"],
        "its JSON is broken",
    ),
    "export without its generator entry": (
        ["sample", "@no_generator.safetensors", "-o", "x.npy"],
        "it has no 'generator' entry",
    ),
    "export whose network is narrower than its weights": (
        ["sample", "@narrower.safetensors", "-o", "x.npy"],
        "the weights do not fit the network it describes",
    ),
    "export with an unknown latent field": (
        ["sample", "@unknown_latent_field.safetensors", "-o", "x.npy"],
        "does not rebuild its generator",
    ),
    "export naming a class outside the package": (
        ["sample", "@foreign_class.safetensors", "-o", "x.npy"],
        "'subprocess.Popen', which is not one of gan-tricks' own classes",
    ),
    # stored configs that are bombs or name what must not be imported
    "report of a config.yaml of YAML aliases": (["report", "@bombed_run"], "expands to more than"),
}


def _write_exports(folder: Path) -> None:
    """A small MLP generator exported for real, then copies with one header entry edited."""
    from safetensors.torch import save_file

    from gan_tricks.export import FORMAT
    from gan_tricks.models import MLPGenerator

    init = {"latent_dim": 2, "out_dim": 2, "width": 16, "depth": 2}
    tensors = MLPGenerator(**init).state_dict()
    header = {
        "format": FORMAT,
        "generator": {"class_path": "gan_tricks.models.MLPGenerator", "init_args": init},
        "latent": {"dim": 2, "distribution": "gaussian"},
    }
    edits = {
        "cut_json": {"latent": '{"dim": 2, "distrib'},
        "no_generator": {"generator": None},
        "narrower": {"generator": {**header["generator"], "init_args": {**init, "width": 8}}},
        "unknown_latent_field": {"latent": {"dim": 2, "temperature": 0.7}},
        "foreign_class": {"generator": {"class_path": "subprocess.Popen", "init_args": {}}},
    }
    for name, edit in edits.items():
        metadata = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in {**header, **edit}.items()
            if value is not None
        }
        save_file(tensors, str(folder / f"{name}.safetensors"), metadata=metadata)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, content in FILES.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    (tmp_path / "garbage.safetensors").write_bytes(FILES["garbage.ckpt"])
    (tmp_path / "a_folder.npy").mkdir()
    (tmp_path / "a_folder.safetensors").mkdir()
    torch.save(torch.ones(3), tmp_path / "tensor.ckpt")
    torch.save({"weights": torch.ones(3)}, tmp_path / "foreign.ckpt")
    _write_exports(tmp_path)
    bombed = tmp_path / "bombed_run"
    bombed.mkdir()
    (bombed / "config.yaml").write_text(FILES["laughs.yaml"])
    (bombed / "metrics.csv").write_text("step,epoch,train/d_loss,train/g_loss\n0,0,1.3,0.7\n")
    return tmp_path


def expand(args: list[str], folder: Path) -> list[str]:
    """``@name``: the path of a file of the case's folder; ``@@name``: that file's text."""
    return [
        (folder / arg[2:]).read_text()
        if arg.startswith("@@")
        else str(folder / arg[1:])
        if arg.startswith("@")
        else arg
        for arg in args
    ]


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    return [line for line in err.splitlines() if "error" in line.lower()]


@pytest.mark.parametrize(("args", "says"), CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_bad_input_is_one_sentence_exit_2_and_no_run_folder(args, says, workdir, capsys):
    before = sorted(p.name for p in workdir.iterdir())
    extra = []
    if args[0] == "fit":  # quiet and short, unless the case itself sets the option
        pairs = zip(QUIET[::2], QUIET[1::2])
        extra = [item for key, value in pairs if key not in args for item in (key, value)]

    assert main([*expand(args, workdir), *extra]) == 2

    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("gan-tricks: error: "), lines
    assert says in lines[0]
    assert sorted(p.name for p in workdir.iterdir()) == before  # no runs/, nothing else


def _first_run(workdir: Path) -> Path:
    assert main(["fit", "--config", RING8, "--name", "r", *QUIET]) == 0
    return workdir / "runs" / "r"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "mistake",
    [
        ["--config", "@clip_and_penalty.yaml", "--overwrite", "true"],  # found at fit start
        ["--model.loss", "vanilla", "--overwrite", "true"],  # found while parsing
        ["--ckpt_path", "@garbage.ckpt"],  # a resume from a bad file
        [],  # no --overwrite
        # resumes that would change what the run is
        [*LONGER, "--model.d_optimizer.init_args.lr", "0.003"],
        [*LONGER, "--data.init_args.batch_size", "64"],
        [*LONGER, "--seed_everything", "7", "--resume_changes", "true"],
        [*LONGER, "--config", DIGITS, "--resume_changes", "true"],
        # found once the networks exist, after the run folder was opened
        [*LONGER, "--model.discriminator.init_args.width", "48", "--resume_changes", "true"],
        ["--ckpt_path", "last"],  # max_steps already reached
    ],
    ids=[
        "conflict with --overwrite",
        "bad value with --overwrite",
        "bad resume",
        "no overwrite",
        "resume with a new D rate",
        "resume with a new batch size",
        "resume with a new seed",
        "resume on other data",
        "resume into a wider D",
        "resume past max_steps",
    ],
)
def test_an_earlier_run_survives_a_failed_command_untouched(mistake, workdir, capsys):
    run = _first_run(workdir)
    before = _snapshot(run)

    args = ["fit", "--config", RING8, "--name", "r", *QUIET, *expand(mistake, workdir)]
    assert main(args) == 2

    assert len(error_lines(capsys)) == 1
    assert _snapshot(run) == before
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == ["r"]  # nothing set aside


def test_a_resume_from_a_corrupt_last_checkpoint_leaves_the_run_as_it_was(workdir, capsys):
    run = _first_run(workdir)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"\x80\x02 truncated by a full disk")
    before = _snapshot(run)

    assert main(["fit", "--config", RING8, "--name", "r", *QUIET, *LONGER]) == 2

    assert "is not a readable checkpoint" in error_lines(capsys)[0]
    assert _snapshot(run) == before


def test_a_resume_error_names_every_changed_setting_with_old_and_new(workdir, capsys):
    _first_run(workdir)
    changes = ["--model.g_optimizer.init_args.lr", "0.01", "--model.n_critic", "2"]

    assert main(["fit", "--config", RING8, "--name", "r", *QUIET, *LONGER, *changes]) == 2

    (line,) = error_lines(capsys)
    assert "model.g_optimizer.lr (0.0005 -> 0.01)" in line
    assert "model.n_critic (1 -> 2)" in line
    assert "--resume_changes true" in line


def test_overwrite_replaces_the_run_once_training_starts(workdir):
    run = _first_run(workdir)
    (run / "alarms.jsonl").write_text("{}\n")
    assert main(["fit", "--config", RING8, "--name", "r", *QUIET, "--overwrite", "true"]) == 0
    assert not (run / "alarms.jsonl").exists()
    assert sorted(p.name for p in (workdir / "runs").iterdir()) == ["r"]
