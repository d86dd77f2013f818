"""``make demo``: why the toolkit exists, in about three minutes on a 2-core CPU.

Three real runs of the packaged recipes, two at a time: the plain GAN and the tricks recipe on
ring8 (then one picture of both, with their measured quality), and a failing run (G 50 times
faster than D on grid25) that a detector catches and stops, with its report page. The paths are
printed at the end.

    python -m gan_tricks.experiments.demo --out runs/demo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gan_tricks.engine.recorder import EVALUATION_FILE

# ModeCollapse stops the failing run at its alarm; the probe evaluates the ring8 runs in their
# own process at the end (gan-tricks evaluate's protocol).
CAUGHT = """model:
  detectors+:
    - class_path: gan_tricks.monitors.ModeCollapse
      init_args: {action: stop}
    - class_path: gan_tricks.monitors.DiscriminatorOverpowering
    - class_path: gan_tricks.monitors.NonFinite
"""
EVALUATED = """trainer:
  callbacks+:
    - class_path: gan_tricks.lightning.QualityProbe
      init_args: {every: 100000, num_samples: 2500, final_evaluation: true}
"""


def fit(out: Path, name: str, *configs: str, steps: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "gan_tricks.cli", "fit"]
    for config in configs:
        command += ["--config", config]
    if steps is not None:
        command += ["--trainer.max_steps", str(steps)]
    command += ["--name", name, "--overwrite", "true", "--trainer.default_root_dir", str(out)]
    command += ["--trainer.enable_progress_bar", "false", "--wandb", "off"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 (closed with the process below)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log = log  # type: ignore[attr-defined]
    return process


def wait(process: subprocess.Popen, name: str, out: Path) -> None:
    if process.wait() != 0:
        print((out / f"{name}.log").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"demo: the {name} run failed (its log: {out / f'{name}.log'}).")
    process.log.close()  # type: ignore[attr-defined]


def side_by_side(out: Path, runs: dict[str, str], picture: Path) -> dict[str, dict]:
    """One picture of the runs' final samples over ring8's modes, titled with their quality."""
    import torch

    from gan_tricks.data import Toy2D
    from gan_tricks.plotting import figure_with_axes
    from gan_tricks.run import load_run

    data = Toy2D("ring8")
    figure, axes = figure_with_axes(1, len(runs), figsize=(5 * len(runs), 5.4), dpi=110)
    measured = {}
    for ax, (name, title) in zip(axes, runs.items()):
        module, _ = load_run(out / name / "checkpoints" / "last.ckpt")
        with torch.no_grad():
            points = module.sample(2500, seed=0).cpu()
        metrics = json.loads((out / name / EVALUATION_FILE).read_text())
        measured[name] = metrics
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, c="tab:blue")
        ax.scatter(data.modes[:, 0], data.modes[:, 1], s=60, marker="x", c="tab:red")
        ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), aspect="equal")
        ax.set_title(
            f"{title}\n{metrics['modes_covered']} of 8 modes, "
            f"{100 * metrics['high_quality']:.1f} % of samples on a mode"
        )
    figure.tight_layout()
    figure.savefig(picture)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--steps", type=int, default=None, help="shorter runs, for a quick look")
    options = parser.parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "caught.yaml").write_text(CAUGHT)
    (out / "evaluated.yaml").write_text(EVALUATED)
    evaluated = str(out / "evaluated.yaml")
    start = time.perf_counter()
    print("demo: training ring8 plain and with the tricks, then a failing run (about 3 min)")
    steps = options.steps
    tricks = fit(out, "ring8_tricks", "ring8_tricks", evaluated, steps=steps)  # the longest
    plain = fit(out, "ring8_plain", "ring8", evaluated, steps=steps)
    wait(plain, "ring8_plain", out)
    failing = fit(out, "failing", "failures/mode_collapse", str(out / "caught.yaml"), steps=steps)
    wait(failing, "failing", out)
    report = subprocess.run(
        [sys.executable, "-m", "gan_tricks.cli", "report", str(out / "failing")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wait(tricks, "ring8_tricks", out)
    picture = out / "plain_vs_tricks.png"
    runs = {"ring8_plain": "plain GAN (ring8)", "ring8_tricks": "with tricks (ring8_tricks)"}
    measured = side_by_side(out, runs, picture)
    alarms_file = out / "failing" / "alarms.jsonl"
    alarms = [json.loads(line) for line in alarms_file.open()] if alarms_file.is_file() else []
    plain_q, tricks_q = (100 * measured[name]["high_quality"] for name in runs)
    print(f"demo: done in {time.perf_counter() - start:.0f} s")
    print(f"  plain GAN:   {plain_q:.1f} % of samples on a mode; with tricks: {tricks_q:.1f} %")
    if alarms:
        first = alarms[0]
        print(f"  failing run: {first['detector']} at step {first['step']}: {first['message']}")
    else:
        print("  failing run: no alarm in so short a run (the detectors warm up for 500 steps)")
    print(f"  picture: {picture}")
    print(f"  report:  {report.stdout.strip().removeprefix('wrote ').split(' and ')[0]}")
    print(f"  runs:    {out / 'ring8_plain'}, {out / 'ring8_tricks'}, {out / 'failing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
