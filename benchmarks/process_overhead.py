"""The whole `gan-tricks fit` process against a plain PyTorch script doing the same run.

    python benchmarks/process_overhead.py --steps 1,600 --rounds 3 \
        --out docs/results/process_overhead

Per round and step count, one process of each, alternating (plain first, then fit), each
timed from launch to exit with one thread (``OMP_NUM_THREADS=1``). The fit is
``gan-tricks fit --config recipes/digits.yaml`` as a user starts it (progress bar, checkpoints,
CSV log, pictures at the end) with W&B off; the script is
``benchmarks/plain_digits_script.py`` (the same networks, data and optimizers, a CSV log, a
checkpoint and a sample grid). The 1-iteration run is the start-up and tear-down; the longest
run the whole process. Writes ``OUT.md`` and ``OUT.json``; prints the ratios.
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

ROOT = Path(__file__).resolve().parent.parent


def fit_command(steps: int, folder: Path) -> list[str]:
    return [
        sys.executable, "-m", "gan_tricks.cli", "fit",
        "--config", str(ROOT / "recipes" / "digits.yaml"),
        "--trainer.max_steps", str(steps), "--trainer.default_root_dir", str(folder),
        "--name", "fit", "--overwrite", "true", "--wandb", "off",
    ]  # fmt: skip


def plain_command(steps: int, folder: Path) -> list[str]:
    script = ROOT / "benchmarks" / "plain_digits_script.py"
    return [sys.executable, str(script), "--steps", str(steps), "--out", str(folder / "plain")]


def timed(command: list[str]) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command[2]} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="1,600", help="comma-separated iteration counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="docs/results/process_overhead")
    args = parser.parse_args()
    counts = [int(s) for s in args.steps.split(",")]
    times: dict[str, dict[str, list[float]]] = {str(n): {"plain": [], "fit": []} for n in counts}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            for steps in counts:
                plain = timed(plain_command(steps, Path(folder)))
                fit = timed(fit_command(steps, Path(folder)))
                times[str(steps)]["plain"].append(plain)
                times[str(steps)]["fit"].append(fit)
                print(f"round {round_index + 1}, {steps} iterations: plain {plain:.2f} s, "
                      f"gan-tricks fit {fit:.2f} s ({fit / plain:.2f}x)", flush=True)  # fmt: skip
    rows = []
    for steps, arms in times.items():
        plain, fit = statistics.median(arms["plain"]), statistics.median(arms["fit"])
        rows.append({"steps": int(steps), "plain_s": plain, "fit_s": fit, "ratio": fit / plain,
                     "difference_s": fit - plain, **arms})  # fmt: skip
    for row in rows:
        print(f"{row['steps']} iterations: fit / plain = {row['ratio']:.2f}x "
              f"({row['fit_s']:.2f} s against {row['plain_s']:.2f} s, "
              f"{row['difference_s']:+.2f} s)")  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    command = f"python benchmarks/process_overhead.py --steps {args.steps} --rounds {args.rounds}"
    lines = [
        "# The whole `gan-tricks fit` process against a plain script (digits DCGAN)",
        "",
        f"Made by `{command} --out {args.out}` on a 2-core CPU, one thread per process; "
        "each row the median of its rounds, the two arms alternating. The script is "
        "`benchmarks/plain_digits_script.py`: the same networks, data and optimizers, a CSV "
        "log, a checkpoint and a sample grid. Targets: start-up (the 1-iteration row) within "
        "1 s of the script, the whole process <= 1.10x.",
        "",
        "| iterations | plain script (s) | gan-tricks fit (s) | ratio | difference (s) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['steps']} | {row['plain_s']:.2f} | {row['fit_s']:.2f} | "
            f"**{row['ratio']:.2f}x** | {row['difference_s']:+.2f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
