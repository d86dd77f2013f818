"""The plain-GAN baseline: ring8 and grid25, 5 seeds each, through the real `gan-tricks` command.

    python benchmarks/baseline.py --out docs/results/baseline.md      (or: make baseline)

Each run is `gan-tricks fit` on the recipe with a fixed step budget, then `gan-tricks evaluate`
(PacGAN's protocol: 2,500 samples, high quality within 3 std, reverse KL to uniform over
modes). Runs go two at a time (one per core, one thread each); the wall time of each run is
reported beside its metrics. Results: a Markdown table and a CSV next to it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "gan_tricks.cli"]


def run_one(recipe: str, seed: int, runs_root: Path, extra: list[str]) -> dict:
    name = f"{Path(recipe).stem}-seed{seed}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    fit = [
        *CLI,
        "fit",
        "--config",
        recipe,
        "--seed_everything",
        str(seed),
        "--data.init_args.seed",
        str(seed),
        "--name",
        name,
        "--overwrite",
        "true",
        "--wandb",
        "off",
        "--trainer.default_root_dir",
        str(runs_root),
        "--trainer.enable_progress_bar",
        "false",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(fit, cwd=ROOT, env=env, check=True, capture_output=True)
    train_seconds = time.perf_counter() - start
    checkpoint = runs_root / name / "checkpoints" / "last.ckpt"
    out = subprocess.run(
        [*CLI, "evaluate", str(checkpoint)], cwd=ROOT, env=env, check=True, capture_output=True
    )
    metrics = json.loads(out.stdout.decode().strip().splitlines()[-1])
    metrics["eval_seed"] = metrics.pop("seed")
    return {"recipe": Path(recipe).stem, "seed": seed, "train_seconds": train_seconds, **metrics}


def read_rows(path: Path) -> list[dict]:
    numeric = {"seed": int, "modes_covered": int, "num_modes": int, "train_seconds": float}
    numeric |= {"high_quality": float}
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, cast in numeric.items():
            row[key] = cast(row[key])
        row["reverse_kl"] = float(row["reverse_kl"]) if row["reverse_kl"] else None
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| data | seed | modes covered | high-quality % | reverse KL | train time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        group = [r for r in rows if r["recipe"] == recipe]
        for r in group:
            kl = "n/a" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
            lines.append(
                f"| {recipe} | {r['seed']} | {r['modes_covered']} / {r['num_modes']} | "
                f"{100 * r['high_quality']:.1f} | {kl} | {r['train_seconds']:.0f} |"
            )
        kls = [r["reverse_kl"] for r in group if r["reverse_kl"] is not None]
        lines.append(
            f"| **{recipe} mean** | {len(group)} seeds | "
            f"**{statistics.mean(r['modes_covered'] for r in group):.1f}** | "
            f"**{100 * statistics.mean(r['high_quality'] for r in group):.1f}** | "
            f"**{statistics.mean(kls):.3f}** | "
            f"{statistics.mean(r['train_seconds'] for r in group):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", default="recipes/ring8.yaml,recipes/grid25.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs-root", default="runs/baseline")
    parser.add_argument("--out", default="docs/results/baseline.md")
    parser.add_argument(
        "--table-only", action="store_true", help="rebuild the Markdown from the existing CSV"
    )
    parser.add_argument("extra", nargs="*", help="extra `gan-tricks fit` overrides")
    options = parser.parse_args()
    out = ROOT / options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if options.table_only:
        rows = read_rows(out.with_suffix(".csv"))
    else:
        jobs = [(r, seed) for r in options.recipes.split(",") for seed in range(options.seeds)]
        runs_root = ROOT / options.runs_root
        with ThreadPoolExecutor(options.jobs) as pool:
            rows = list(pool.map(lambda job: run_one(*job, runs_root, options.extra), jobs))
        with open(out.with_suffix(".csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    command = "python benchmarks/baseline.py " + " ".join(
        arg for arg in sys.argv[1:] if arg != "--table-only"
    )
    out.write_text(
        f"# Plain-GAN baseline\n\nMade by `{command.strip()}` "
        f"({options.jobs} runs at a time, one thread each).\n\n{table(rows)}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
