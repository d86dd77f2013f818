"""DDP scaling on this machine: one process against two, through `gan-tricks fit`.

    python benchmarks/ddp_scaling.py --steps 300 --rounds 2 --out docs/results/ddp_scaling

The digits DCGAN (``recipes/digits.yaml``) on CPU processes (gloo), each with one thread
(``OMP_NUM_THREADS=1``): one process with batch 64; two with batch 32 each (the same global
batch: the same training, as the distributed tests check, in less time if it scales); and two
with batch 64 each (twice the samples per iteration). Time per iteration is the run's
``timing.json`` (the training loop only, start-up excluded); throughput is global samples per
second (real images through D per iteration / time per iteration). The arms alternate within
each round; the table gives medians over rounds. Writes ``OUT.md`` and ``OUT.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "digits.yaml"
ARMS = {  # name: (processes, batch per process)
    "1 process, batch 64": (1, 64),
    "2 processes, batch 32 each (global 64)": (2, 32),
    "2 processes, batch 64 each (global 128)": (2, 64),
}


def seconds_per_step(processes: int, batch: int, steps: int, runs: Path, name: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    command = [
        sys.executable, "-m", "gan_tricks.cli", "fit", "--config", str(RECIPE),
        "--trainer.accelerator", "cpu", "--trainer.devices", str(processes),
        "--data.init_args.batch_size", str(batch), "--trainer.max_steps", str(steps),
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(runs),
        "--name", name, "--wandb", "off",
    ]  # fmt: skip
    if processes > 1:
        command += ["--trainer.strategy", "ddp"]
    subprocess.run(command, env=env, check=True, capture_output=True)
    return json.loads((runs / name / "timing.json").read_text())["seconds_per_step"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="docs/results/ddp_scaling")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in ARMS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            names = list(ARMS) if round_index % 2 == 0 else list(ARMS)[::-1]
            for name in names:
                processes, batch = ARMS[name]
                run = f"r{round_index}-{processes}x{batch}"
                times[name].append(
                    seconds_per_step(processes, batch, args.steps, Path(scratch), run)
                )
                print(f"{name}: {1000 * times[name][-1]:.1f} ms per iteration", flush=True)
    rows = []
    single = statistics.median(times[next(iter(ARMS))])
    for name, values in times.items():
        processes, batch = ARMS[name]
        step = statistics.median(values)
        rows.append(
            {
                "arm": name,
                "ms_per_step": 1000 * step,
                "samples_per_second": processes * batch / step,
                "speed_up_vs_1_process": (processes * batch / step) / (64 / single),
                "rounds_ms": [1000 * v for v in values],
            }
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "# DDP scaling on this machine (digits DCGAN, CPU processes with gloo)",
        "",
        f"Made by `python benchmarks/ddp_scaling.py --steps {args.steps} --rounds {args.rounds} "
        f"--out {args.out}` on a 2-core CPU, one thread per process. Medians over rounds.",
        "",
        "| arm | ms / iteration | samples / s | throughput vs 1 process | rounds (ms) |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        rounds = ", ".join(f"{v:.1f}" for v in row["rounds_ms"])
        lines.append(
            f"| {row['arm']} | {row['ms_per_step']:.1f} | {row['samples_per_second']:.0f} | "
            f"{row['speed_up_vs_1_process']:.2f}x | {rounds} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
