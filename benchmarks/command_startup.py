"""Whole-process time of each `gan-tricks` command, launch to exit, median of N.

    python benchmarks/command_startup.py --repeats 5 --out docs/results/command_startup
    python benchmarks/command_startup.py --source /path/to/other/checkout ...  # another version

``--help``, ``recipes``, ``sample`` and ``evaluate`` on a ring8 checkpoint, and a 1-iteration
``fit`` of ring8, each run ``--repeats`` times in a fresh interpreter with one thread (what a
user waits for at the prompt). ``--source`` runs the package of another checkout (its folder
first on ``PYTHONPATH``), to compare versions on the same machine. Writes ``OUT.md`` and
``OUT.json``.
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


def command_lines(folder: Path) -> dict[str, list[str]]:
    checkpoint = str(folder / "runs" / "startup" / "checkpoints" / "last.ckpt")
    fit = ["fit", "--config", "recipes/ring8.yaml", "--trainer.max_steps", "1", "--name"]
    fit += ["startup", "--overwrite", "true", "--wandb", "off"]
    fit += ["--trainer.default_root_dir", str(folder / "runs")]
    return {
        "--help": ["--help"],
        "recipes": ["recipes"],
        "fit (1 iteration)": fit,
        "sample": ["sample", checkpoint, "-n", "64", "-o", str(folder / "s.png")],
        "evaluate": ["evaluate", checkpoint],
    }


def timed(args: list[str], source: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "gan_tricks.cli", *args],
        env=env, cwd=source, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 2):  # --help without a command exits 2 in some versions
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--source", default=str(ROOT), help="the checkout whose package runs")
    parser.add_argument("--out", default="docs/results/command_startup")
    args = parser.parse_args()
    source = Path(args.source).resolve()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        commands = command_lines(Path(tmp))
        timed(commands["fit (1 iteration)"], source)  # the checkpoint sample / evaluate read
        for name, command in commands.items():
            if name == "recipes" and not (source / "gan_tricks" / "packaged.py").is_file():
                continue  # a version without the command
            times = [timed(command, source) for _ in range(args.repeats)]
            results[name] = {"median_s": statistics.median(times), "times_s": times}
            print(f"{name}: {statistics.median(times):.2f} s (median of {args.repeats})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# `gan-tricks` commands, launch to exit",
        "",
        f"Made by `python benchmarks/command_startup.py --repeats {args.repeats}` on a 2-core "
        "CPU, one thread; median of the repeats, each in a fresh interpreter. `sample` and "
        "`evaluate` read a ring8 checkpoint; `fit` runs 1 iteration of ring8.",
        "",
        "| command | seconds (median) |",
        "|---|---|",
        *(f"| `{name}` | {r['median_s']:.2f} |" for name, r in results.items()),
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
