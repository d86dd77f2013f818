"""What the failure detectors cost per step, measured in one run with the arms interleaved.

    python benchmarks/detector_overhead.py --config recipes/digits.yaml \
        --overlay benchmarks/overlays/monitors/all_detectors.yaml --steps 3000 --block 100

One `gan-tricks fit` of the recipe with the overlay's detectors, in this process. Every other
block of ``--block`` iterations the detectors are taken out of the engine, so both arms share
the process, the data, the warm caches and the machine's load of the moment; separate runs of
the same recipe varied by ±5 % on this machine, more than the effect measured. The time of an
iteration is the wall time from one iteration's start to the next one's (the step, then every
callback). The first pair of blocks is a warm-up and is left out. The ratio is the median over
block pairs of (mean step time with detectors) / (mean step time without, in the neighbouring
block). A block is a multiple of 100 iterations so that the detectors that measure every 10 or
100 iterations do so at their usual rate.
Writes ``OUT.md`` (the ratio, the per-block times) and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_tricks.cli import main as gan_tricks  # noqa: E402
from gan_tricks.monitors import Detector  # noqa: E402


class InterleavedDetectors(pl.Callback):
    """Times every iteration and takes the run's detectors out of its engine in every other
    block (an engine without detectors skips their measurements, their per-step gradient
    norms and their checks: what a run without them does)."""

    def __init__(self, block: int = 100, output: str = "step_times.json") -> None:
        self.block = block
        self.output = output
        self.step_seconds: list[tuple[int, bool, float]] = []  # (step, detectors on, seconds)
        self.hook_seconds: dict[str, float] = {}  # per detector, inside its methods while on
        self._detectors: list[Detector] = []
        self._last: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._detectors = list(pl_module.detectors)
        for detector in self._detectors:
            self.hook_seconds[detector.name] = 0.0
            for method in ("measure", "observe", "before_optimizer_step"):
                # An instance attribute shadows the method: the detector's own time, counted.
                setattr(detector, method, self._timed(detector.name, getattr(detector, method)))

    def _timed(self, name: str, method):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.hook_seconds[name] += time.perf_counter() - start

        return timed

    def detectors_on(self, step: int) -> bool:
        return (step // self.block) % 2 == 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        now = time.perf_counter()
        step = trainer.global_step
        if self._last is not None:
            # The iteration that just ended ran with the switch set at its start.
            self.step_seconds.append((step - 1, self.detectors_on(step - 1), now - self._last))
        self._last = now
        pl_module.detectors[:] = self._detectors if self.detectors_on(step) else []

    def on_train_end(self, trainer, pl_module) -> None:
        if self._last is not None:  # the last iteration ends here
            step = trainer.global_step - 1
            self.step_seconds.append(
                (step, self.detectors_on(step), time.perf_counter() - self._last)
            )
        pl_module.detectors[:] = self._detectors
        record = {"steps": self.step_seconds, "hook_seconds": self.hook_seconds}
        Path(self.output).write_text(json.dumps(record))


def block_ratios(step_seconds: list[tuple[int, bool, float]], block: int) -> list[float]:
    """Per pair of blocks (off, then on), mean step time on over mean step time off; the
    first pair (warm-up) is left out."""
    blocks: dict[int, list[float]] = {}
    for step, _, seconds in step_seconds:
        blocks.setdefault(step // block, []).append(seconds)
    ratios = []
    for index in range(2, max(blocks) + 1, 2):
        off, on = blocks.get(index), blocks.get(index + 1)
        if off and on and len(on) == block:
            ratios.append(statistics.mean(on) / statistics.mean(off))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="recipes/digits.yaml")
    parser.add_argument("--overlay", default="benchmarks/overlays/monitors/all_detectors.yaml")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--block", type=int, default=100)
    parser.add_argument("--runs-root", default="runs/bench_detector_overhead")
    parser.add_argument("--out", default="docs/results/detector_overhead.md")
    options = parser.parse_args()
    if options.block % 100 or options.steps < 4 * options.block:
        raise SystemExit("--block must be a multiple of 100 and --steps at least 4 blocks.")
    os.environ.setdefault("WANDB_MODE", "disabled")
    times_file = ROOT / options.runs_root / "step_times.json"
    times_file.parent.mkdir(parents=True, exist_ok=True)
    code = gan_tricks(
        [
            "fit", "--config", options.config, "--config", options.overlay,
            "--trainer.callbacks+=detector_overhead.InterleavedDetectors",
            "--trainer.callbacks.init_args.block", str(options.block),
            "--trainer.callbacks.init_args.output", str(times_file),
            "--name", "interleaved", "--overwrite", "true", "--wandb", "off",
            "--trainer.max_steps", str(options.steps),
            "--trainer.default_root_dir", options.runs_root,
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    if code != 0:
        raise SystemExit(code)
    record = json.loads(times_file.read_text())
    step_seconds = [tuple(row) for row in record["steps"]]
    hook_seconds = record["hook_seconds"]
    ratios = block_ratios(step_seconds, options.block)
    on = [s for _, is_on, s in step_seconds if is_on]
    off = [s for _, is_on, s in step_seconds if not is_on]
    ratio = statistics.median(ratios)
    # The detectors' own code, timed inside their hooks, against the rest of the steps it ran in.
    in_hooks = sum(hook_seconds.values())
    hook_share = in_hooks / (sum(on) - in_hooks)
    summary = {
        "ratio_median": round(ratio, 4),
        "ratio_min": round(min(ratios), 4),
        "ratio_max": round(max(ratios), 4),
        "block_pairs": len(ratios),
        "ms_per_step_on": round(1000 * statistics.median(on), 3),
        "ms_per_step_off": round(1000 * statistics.median(off), 3),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "hook_share": round(hook_share, 4),
        "hook_ms_per_step": {k: round(1000 * v / len(on), 4) for k, v in hook_seconds.items()},
    }
    command = "python benchmarks/detector_overhead.py " + " ".join(sys.argv[1:])
    rows = "\n".join(f"| {index + 1} | {r:.3f} |" for index, r in enumerate(ratios))
    per_detector = "\n".join(
        f"| {name} | {1000 * seconds / len(on):.3f} |" for name, seconds in hook_seconds.items()
    )
    text = (
        f"# Every failure detector on `{options.config}`: time per step, interleaved\n\n"
        f"Made by `{command.strip()}` (OMP_NUM_THREADS={summary['threads']}, on a 2-core CPU, "
        f"nothing else running). One fit of {options.steps} iterations; the detectors of "
        f"`{options.overlay}` are off in every other block of {options.block} iterations. "
        f"Ratio per pair of neighbouring blocks: mean step time with the detectors over "
        f"without (the first pair is a warm-up).\n\n"
        f"**Detectors on / off: {ratio:.3f}x** (median over {len(ratios)} pairs; "
        f"{min(ratios):.3f}-{max(ratios):.3f}). Median step: {summary['ms_per_step_on']} ms "
        f"on, {summary['ms_per_step_off']} ms off.\n\n"
        f"**Inside the detectors' hooks: {100 * hook_share:.2f} %** of the rest of the step "
        f"(each detector's `on_train_batch_end` timed while on), the part of the cost that "
        f"block-to-block noise does not blur:\n\n| detector | ms per step |\n|---|---|\n"
        f"{per_detector}\n\n| pair | on / off |\n|---|---|\n{rows}\n"
    )
    out = ROOT / options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
