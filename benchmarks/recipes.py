"""Run recipes over seeds through the real `gan-tricks` command and tabulate what they measure.

    python benchmarks/recipes.py --recipes recipes/grid25.yaml,recipes/tricks/packing.yaml \
        --seeds 3 --baseline recipes/grid25.yaml --out docs/results/tricks_grid25.md

Each run is `gan-tricks fit` (seeded through `--seed_everything` and the data's seed) and then
`gan-tricks evaluate` on its last checkpoint: PacGAN's protocol on the 2D mixtures (2,500
samples, high quality within 3 std, reverse KL over modes), the stacked-digits protocol (26,000
samples, 1,000 modes) on stacked digits. Time per step comes from the run's ``timing.json``
(training loop only, start-up excluded) and is compared with the ``--baseline`` recipe's, which
ran in the same batch under the same load. Runs go ``--jobs`` at a time, one thread each.
With ``--on BASE``, each recipe is an overlay given after BASE (``--config BASE --config
OVERLAY``): the one trick it switches on, measured on BASE's data and networks.
Results: ``OUT.md`` (per-recipe means and spreads, then every run) and ``OUT.csv`` beside it,
which grows one row per finished run; ``--table-only`` rebuilds the Markdown from the CSV.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "gan_tricks.cli"]
FIELDS = (
    "recipe",
    "seed",
    "modes_covered",
    "num_modes",
    "high_quality",
    "reverse_kl",
    "steps",
    "seconds_per_step",
    "train_seconds",
    "wall_seconds",
)


def run_one(
    recipe: str, seed: int, runs_root: Path, extra: list[str], base: str | None = None
) -> dict:
    name = f"{Path(recipe).stem}-seed{seed}"
    configs = ["--config", recipe]
    if base and Path(base).resolve() != Path(recipe).resolve():
        configs = ["--config", base, *configs]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    fit = [
        *CLI, "fit", *configs,
        "--seed_everything", str(seed), "--data.init_args.seed", str(seed),
        "--name", name, "--overwrite", "true", "--wandb", "off",
        "--trainer.default_root_dir", str(runs_root),
        "--trainer.enable_progress_bar", "false",
        *extra,
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(fit, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{result.stderr[-2000:]}")
    wall_seconds = time.perf_counter() - start
    run_dir = runs_root / name
    out = subprocess.run(
        [*CLI, "evaluate", str(run_dir / "checkpoints" / "last.ckpt")],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    timing = json.loads((run_dir / "timing.json").read_text())
    row = {"recipe": Path(recipe).stem, "seed": seed, "wall_seconds": round(wall_seconds, 1)}
    row |= {key: metrics.get(key) for key in ("modes_covered", "num_modes", "high_quality")}
    row["reverse_kl"] = metrics.get("reverse_kl")
    row |= {key: timing[key] for key in ("steps", "seconds_per_step", "train_seconds")}
    print(json.dumps(row), flush=True)
    return row


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key in FIELDS[1:]:
            value = row.get(key)
            row[key] = None if value in (None, "") else float(value)
    return rows


def _mean_spread(values: list[float | None], fmt: str, scale: float = 1.0) -> str:
    known = [v * scale for v in values if v is not None]
    if not known:
        return "n/a"
    if len(known) == 1:
        return format(known[0], fmt)
    return f"{format(statistics.mean(known), fmt)} ± {format(statistics.stdev(known), fmt)}"


def summary_table(rows: list[dict], baseline: str | None) -> str:
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    per_step = {
        recipe: statistics.mean(r["seconds_per_step"] for r in rows if r["recipe"] == recipe)
        for recipe in recipes
    }
    has_quality = any(r["high_quality"] is not None for r in rows)
    header = "| recipe | seeds | modes covered | worst seed |"
    header += " high-quality % |" if has_quality else ""
    header += " reverse KL | worst KL | ms / step | time vs baseline |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for recipe in recipes:
        group = [r for r in rows if r["recipe"] == recipe]
        modes = [r["modes_covered"] for r in group]
        kls = [r["reverse_kl"] for r in group]
        known_kls = [k for k in kls if k is not None]
        ratio = f"{per_step[recipe] / per_step[baseline]:.2f}x" if baseline in per_step else "n/a"
        line = (
            f"| {recipe} | {len(group)} | {_mean_spread(modes, '.1f')} / "
            f"{group[0]['num_modes']:.0f} | {min(modes):.0f} |"
        )
        if has_quality:
            line += f" {_mean_spread([r['high_quality'] for r in group], '.1f', 100)} |"
        worst_kl = f"{max(known_kls):.3f}" if known_kls else "n/a"
        line += f" {_mean_spread(kls, '.3f')} | {worst_kl} |"
        line += f" {1000 * per_step[recipe]:.1f} | {ratio} |"
        lines.append(line)
    return "\n".join(lines)


def runs_table(rows: list[dict]) -> str:
    lines = [
        "| recipe | seed | modes | high-quality % | reverse KL | steps | train s | ms / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        quality = "n/a" if r["high_quality"] is None else f"{100 * r['high_quality']:.1f}"
        kl = "n/a" if r["reverse_kl"] is None else f"{r['reverse_kl']:.3f}"
        lines.append(
            f"| {r['recipe']} | {r['seed']:.0f} | {r['modes_covered']:.0f} / {r['num_modes']:.0f} "
            f"| {quality} | {kl} | {r['steps']:.0f} | {r['train_seconds']:.0f} "
            f"| {1000 * r['seconds_per_step']:.1f} |"
        )
    return "\n".join(lines)


def dry_run(options: argparse.Namespace) -> int:
    """Parse every recipe (on ``--on`` when given) with the extra overrides, as ``gan-tricks
    fit --print_config`` does, and list the runs a real invocation would make."""
    from gan_tricks.cli import main as gan_tricks

    recipes = options.recipes.split(",")
    for recipe in recipes:
        configs = ["--config", recipe]
        if options.on and Path(options.on).resolve() != Path(recipe).resolve():
            configs = ["--config", options.on, *configs]
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                code = gan_tricks(["fit", *configs, *options.extra, "--print_config"])
            except SystemExit as done:  # --print_config exits 0 once it has printed
                code = done.code
        if code != 0:
            print(f"{recipe}: does not parse (see the error above)", file=sys.stderr)
            return 2
        seeds = range(options.first_seed, options.first_seed + options.seeds)
        print(f"{Path(recipe).stem}: seeds {', '.join(map(str, seeds))}")
    print(f"{len(recipes) * options.seeds} runs, {options.jobs} at a time, into {options.out}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", required=True, help="comma-separated recipe paths")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--baseline", default=None, help="recipe whose time per step is 1.00x")
    parser.add_argument(
        "--on", default=None, metavar="BASE", help="run each recipe as an overlay on BASE"
    )
    parser.add_argument("--runs-root", default="runs/bench")
    parser.add_argument("--out", required=True, help="OUT.md (OUT.csv is written beside it)")
    parser.add_argument("--title", default="Recipe benchmark")
    parser.add_argument("--table-only", action="store_true", help="rebuild OUT.md from OUT.csv")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check that every recipe parses with the extra overrides, list the runs, run none",
    )
    parser.add_argument("extra", nargs="*", help="extra `gan-tricks fit` overrides for every run")
    options = parser.parse_args()
    if options.dry_run:
        raise SystemExit(dry_run(options))
    out = ROOT / options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    recipes = options.recipes.split(",")
    if options.table_only:
        rows = read_rows(out.with_suffix(".csv"))
    else:
        seeds = range(options.first_seed, options.first_seed + options.seeds)
        jobs = [(recipe, seed) for recipe in recipes for seed in seeds]
        runs_root = ROOT / options.runs_root
        # Each row is written as its run ends, so an interrupted benchmark keeps what it did.
        lock = threading.Lock()
        with open(out.with_suffix(".csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            writer.writeheader()

            def run_and_record(job: tuple[str, int]) -> None:
                row = run_one(*job, runs_root, options.extra, options.on)
                with lock:
                    writer.writerow(row)
                    handle.flush()

            with ThreadPoolExecutor(options.jobs) as pool:
                list(pool.map(run_and_record, jobs))
        rows = read_rows(out.with_suffix(".csv"))
    order = {Path(recipe).stem: index for index, recipe in enumerate(recipes)}
    rows.sort(key=lambda r: (order.get(r["recipe"], len(order)), r["seed"]))
    baseline = Path(options.baseline).stem if options.baseline else None
    command = "python benchmarks/recipes.py " + " ".join(
        arg for arg in sys.argv[1:] if arg != "--table-only"
    )
    text = (
        f"# {options.title}\n\nMade by `{command.strip()}` ({options.jobs} runs at a time, one "
        f"thread each, on a 2-core CPU). Mean ± standard deviation over seeds; time per step is "
        f"the training loop's, start-up excluded.\n\n{summary_table(rows, baseline)}\n\n"
        f"## Every run\n\n{runs_table(rows)}\n"
    )
    out.write_text(text)
    print(summary_table(rows, baseline))


if __name__ == "__main__":
    main()
