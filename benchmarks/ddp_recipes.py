"""Every recipe under DDP: each runs a few iterations on two CPU processes (gloo).

    python benchmarks/ddp_recipes.py --steps 4 --out docs/results/ddp_recipes

``gan-tricks fit --config RECIPE --trainer.strategy ddp --trainer.devices 2
--trainer.accelerator cpu --trainer.max_steps STEPS`` for every YAML under ``recipes/``, with
half the recipe's batch size per process (the recipe's global batch, as the README advises).
MNIST's recipe runs on idx files this script writes; CIFAR-10's is listed as not run (its
archive is checksummed, and nothing downloads here). A recipe passes when the fit exits 0 (a
failure-zoo recipe whose weights turn NaN by design rightly writes no checkpoint); otherwise
the table shows the error's last line. Writes ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from data_loading import write_mnist  # noqa: E402

NOT_RUN = {"wgan_gp_cifar10.yaml": "CIFAR-10's archive is checksummed; no download here"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default="docs/results/ddp_recipes")
    args = parser.parse_args()
    recipes = sorted((ROOT / "recipes").rglob("*.yaml"))
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        write_mnist(scratch / "mnist")
        for index, recipe in enumerate(recipes):
            name = str(recipe.relative_to(ROOT))
            if recipe.name in NOT_RUN:
                rows.append({"recipe": name, "ok": None, "note": NOT_RUN[recipe.name]})
                continue
            extra = []
            batch = (yaml.safe_load(recipe.read_text()).get("data") or {}).get("init_args", {})
            if "batch_size" in batch:
                extra.append(f"--data.init_args.batch_size={batch['batch_size'] // 2}")
            if recipe.name == "dcgan_mnist.yaml":
                extra = [
                    f"--data.init_args.root={scratch / 'mnist'}",
                    "--data.init_args.download=false",
                ]
            command = [
                sys.executable, "-m", "gan_tricks.cli", "fit", "--config", str(recipe), *extra,
                "--trainer.strategy", "ddp", "--trainer.devices", "2",
                "--trainer.accelerator", "cpu", "--trainer.max_steps", str(args.steps),
                "--trainer.enable_progress_bar", "false",
                "--trainer.default_root_dir", str(scratch / "runs"), "--name", f"run{index}",
                "--wandb", "off",
            ]  # fmt: skip
            start = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
            seconds = time.perf_counter() - start
            ok = result.returncode == 0
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            note = "" if ok else (lines[-1] if lines else f"exit {result.returncode}")
            rows.append({"recipe": name, "ok": ok, "seconds": round(seconds, 1), "note": note})
            print(f"{name}: {'ok' if ok else 'FAILED ' + note} ({seconds:.0f} s)", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    passed = sum(1 for row in rows if row["ok"])
    ran = sum(1 for row in rows if row["ok"] is not None)
    lines = [
        "# Every recipe on two DDP processes",
        "",
        f"Made by `python benchmarks/ddp_recipes.py --steps {args.steps} --out {args.out}`: "
        f"{args.steps} iterations of each recipe on 2 CPU processes (gloo). "
        f"**{passed} of {ran} run**; {len(rows) - ran} not run (see the table).",
        "",
        "| recipe | result | seconds (start-up included) |",
        "|---|---|---|",
    ]
    for row in rows:
        result = (
            "not run: " + row["note"] if row["ok"] is None else "ok" if row["ok"] else row["note"]
        )
        lines.append(f"| `{row['recipe']}` | {result} | {row.get('seconds', '')} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0 if passed == ran else 1


if __name__ == "__main__":
    raise SystemExit(main())
