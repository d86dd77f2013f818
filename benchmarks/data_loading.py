"""Does data ever limit the step? Loader time per batch against step time, for the image recipes.

    python benchmarks/data_loading.py --out docs/results/data_loading

For each image recipe, in this process: the recipe's own training loader (its DataModule, batch
size and ``num_workers``) is read for ``--batches`` batches after a warm-up, and its mean time
per batch is the rate at which data can arrive; then ``gan-tricks fit`` runs ``--steps``
iterations of the recipe and its ``timing.json`` gives the time per iteration (the loop only,
the wait for data included). Data limits the step when the first approaches the second.

The recipes that read files run on files this script writes in their on-disk format (no
download here): 60,000 random 28x28 digits as MNIST's idx files for ``recipes/dcgan_mnist.yaml``
(with its 2 workers, and with 0), and 5,000 random 80x64 JPEGs for an ``ImageFolder`` at 64x64
(a CelebA-like DCGAN; 2 workers). ``OMP_NUM_THREADS=1`` for the fits, as in the other
benchmarks. Writes ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


FOLDER_RECIPE = {
    "seed_everything": 0,
    "trainer": {"max_steps": 100, "log_every_n_steps": 50},
    "model": {
        "generator": {
            "class_path": "gan_tricks.models.DCGANGenerator",
            "init_args": {"latent_dim": 100, "image_size": 64, "channels": 3, "width": 64},
        },
        "discriminator": {
            "class_path": "gan_tricks.models.DCGANDiscriminator",
            "init_args": {"image_size": 64, "channels": 3, "width": 64},
        },
        "latent": {"dim": 100},
    },
    "data": {
        "class_path": "gan_tricks.data.ImageFolder",
        "init_args": {"path": "FOLDER", "image_size": 64, "batch_size": 64, "num_workers": 2},
    },
}


def write_mnist(root: Path, count: int = 60_000) -> None:
    """MNIST's training and test files (idx, uncompressed) with random digits."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", count), ("t10k", 100)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        header = np.array([0x0803, n, 28, 28], dtype=">i4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + images.tobytes())
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        header = np.array([0x0801, n], dtype=">i4").tobytes()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(header + labels.tobytes())


def write_jpegs(folder: Path, count: int = 5_000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 256, size=(80, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=90)


def loader_seconds_per_batch(recipe: Path, overrides: dict, batches: int) -> float:
    """Mean time per batch of the recipe's training loader, after a warm-up of 5 batches."""
    import importlib

    data = yaml.safe_load(recipe.read_text())["data"]
    module_name, _, class_name = data["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    datamodule = cls(**{**data.get("init_args", {}), **overrides})
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    times, start = [], None
    while len(times) < batches + 5:
        for _ in loader:
            now = time.perf_counter()
            if start is not None:
                times.append(now - start)
            start = now
            if len(times) == batches + 5:
                break
    return statistics.fmean(times[5:])


def step_seconds(recipe: Path, options: list[str], steps: int, runs: Path, name: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    command = [
        sys.executable, "-m", "gan_tricks.cli", "fit", "--config", str(recipe), *options,
        "--trainer.max_steps", str(steps), "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(runs), "--name", name, "--wandb", "off",
    ]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True)
    return json.loads((runs / name / "timing.json").read_text())["seconds_per_step"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", default="docs/results/data_loading")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        write_mnist(scratch / "mnist")
        write_jpegs(scratch / "faces")
        folder_recipe = scratch / "image_folder_64.yaml"
        FOLDER_RECIPE["data"]["init_args"]["path"] = str(scratch / "faces")
        folder_recipe.write_text(yaml.safe_dump(FOLDER_RECIPE))
        mnist = {"root": str(scratch / "mnist"), "download": False}
        cases = [
            ("digits (in memory)", ROOT / "recipes" / "digits.yaml", {}),
            ("stacked digits (composed per item)", ROOT / "recipes" / "stacked_digits.yaml", {}),
            ("MNIST idx files, 2 workers", ROOT / "recipes" / "dcgan_mnist.yaml", mnist),
            (
                "MNIST idx files, 0 workers",
                ROOT / "recipes" / "dcgan_mnist.yaml",
                {**mnist, "num_workers": 0},
            ),
            ("JPEG folder 64x64, 2 workers", folder_recipe, {}),
        ]
        for index, (label, recipe, overrides) in enumerate(cases):
            data_time = loader_seconds_per_batch(recipe, overrides, args.batches)
            options = [f"--data.init_args.{key}={value}" for key, value in overrides.items()]
            step_time = step_seconds(recipe, options, args.steps, scratch / "runs", f"run{index}")
            rows.append(
                {
                    "case": label,
                    "recipe": recipe.name,
                    "data_ms_per_batch": 1000 * data_time,
                    "step_ms": 1000 * step_time,
                    "data_share": data_time / step_time,
                }
            )
            print(f"{label}: data {1000 * data_time:.2f} ms/batch, step {1000 * step_time:.1f} ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# Data loading against step time (image recipes)",
        "",
        f"Made by `python benchmarks/data_loading.py --batches {args.batches} --steps "
        f"{args.steps} --out {args.out}` on this machine (2-core CPU). Data: the recipe's own "
        "training loader read on its own, mean time per batch; step: `gan-tricks fit` of the "
        "recipe, `timing.json`'s time per iteration (the loop, the wait for data included).",
        "",
        "| case | recipe | data ms / batch | step ms | data / step |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['recipe']} | {row['data_ms_per_batch']:.2f} | "
            f"{row['step_ms']:.1f} | {row['data_share']:.3f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
