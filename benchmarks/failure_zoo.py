"""The failure zoo: score every failure detector against runs that fail in known ways.

    python benchmarks/failure_zoo.py --seeds 3 --out docs/results/failure_zoo.md

Each recipe of ``recipes/failures/`` fails in a known way and names, in a ``# caught by:``
line, the detector that must catch it. The healthy recipes of the trick catalogue are the
controls, on which no detector may fire. Every run is ``gan-tricks fit`` of the recipe with all
detectors (``benchmarks/overlays/monitors/all_detectors*.yaml``, default settings) and a
``QualityProbe`` (``quality_probe*.yaml``), which measures the samples every few hundred steps:
modes covered and high-quality share on the 2D mixtures (exact), classes or stacked-digit modes
by the digit classifier on the digits.

Ground truth: a measurement is *failed* when it covers fewer than 3/4 of the modes that as
many perfect samples would (see ``reachable_modes``), or under half the 2D samples are of high
quality, or no image sample is readable, or the images are less than half as spread out as
real ones (mean pairwise distance). A run has failed when its last measurement is failed, and
the failure's *onset* is the first measurement of the failed stretch that runs to the end. A
failing run is *caught* when the recipe's detector raised an alarm no later than 500 steps
after the onset; its delay counts to the latest such alarm (a detector repeats its alarm every
cooldown while a failure lasts). An alarm before the onset has a negative delay: the probe's
spacing allows a little of that, and a run can fail, recover for a while and fail again.
Alarms on a control run are false alarms.

Runs go ``--jobs`` at a time, one thread each; a run whose folder already holds its results
is not run again (``--rerun`` forces it). Results: ``OUT.md`` (a detector x recipe table and
a per-detector summary, then every run) and ``OUT.csv`` (one row per run).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gan_tricks.lightning import read_quality  # noqa: E402
from gan_tricks.monitors import read_alarms  # noqa: E402

CLI = [sys.executable, "-m", "gan_tricks.cli"]
FAILURES = ROOT / "recipes" / "failures"
CONTROLS = (
    "recipes/ring8_tricks.yaml",
    "recipes/grid25_tricks.yaml",
    "recipes/digits.yaml",
    "recipes/stacked_digits_dcgan_tricks.yaml",
)
OVERLAYS = ROOT / "benchmarks" / "overlays" / "monitors"
OVERLAY_FILES = {  # every detector, then the probe, per kind of data
    "2d": ("all_detectors_2d.yaml", "quality_probe.yaml"),
    "images": ("all_detectors.yaml", "quality_probe_images.yaml"),
}
DETECTORS = (
    "NonFinite",
    "DiscriminatorOverpowering",
    "LossOscillation",
    "GradientPathology",
    "ModeCollapse",
    "SpectralCollapse",
    "GeneratorFoolingWithGarbage",
    "DiscriminatorOverfitting",
)
MAX_DELAY = 500  # steps from the onset within which the right detector must fire
MIN_MODE_SHARE = 0.75  # of the modes covered, below which a measurement is failed
MIN_HIGH_QUALITY = 0.5  # 2D samples within 3 std of a mode, below which it is failed
MIN_DIVERSITY = 0.5  # image samples' spread against real ones', below which it is failed
CAUGHT_BY = "# caught by:"


@dataclass(frozen=True)
class Recipe:
    path: Path
    caught_by: tuple[str, ...]  # empty for a control

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def is_2d(self) -> bool:
        return "gan_tricks.data.Toy2D" in self.path.read_text()


def failure_recipes() -> list[Recipe]:
    recipes = []
    for path in sorted(FAILURES.glob("*.yaml")):
        lines = [line for line in path.read_text().splitlines() if line.startswith(CAUGHT_BY)]
        if not lines:
            raise SystemExit(f"{path} has no '{CAUGHT_BY} Detector' line.")
        names = tuple(name.strip() for name in lines[0][len(CAUGHT_BY) :].split(","))
        unknown = [name for name in names if name not in DETECTORS]
        if unknown:
            raise SystemExit(f"{path} names unknown detectors: {', '.join(unknown)}.")
        recipes.append(Recipe(path, names))
    return recipes


def run_dir(runs_root: Path, recipe: Recipe, seed: int) -> Path:
    return runs_root / f"{recipe.name}-seed{seed}"


def fit(recipe: Recipe, seed: int, runs_root: Path, rerun: bool) -> None:
    folder = run_dir(runs_root, recipe, seed)
    if not rerun and (folder / "timing.json").is_file():
        return  # finished before: resume a killed zoo without redoing it
    overlays = OVERLAY_FILES["2d" if recipe.is_2d else "images"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    command = [
        *CLI, "fit", "--config", str(recipe.path),
        *(arg for overlay in overlays for arg in ("--config", str(OVERLAYS / overlay))),
        "--seed_everything", str(seed), "--data.init_args.seed", str(seed),
        "--name", folder.name, "--overwrite", "true", "--wandb", "off",
        "--trainer.default_root_dir", str(runs_root), "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{folder.name} failed:\n{result.stderr[-2000:]}")
    print(f"done {folder.name}", flush=True)


def is_failed(measurement: dict) -> bool:
    """Whether one QualityProbe measurement shows a failed run (see the module's doc)."""
    num_samples = measurement.get("num_samples", 0)
    if num_samples and measurement.get("unreadable", 0) >= num_samples:
        return True
    if measurement["modes_covered"] < MIN_MODE_SHARE * reachable_modes(measurement):
        return True
    if measurement.get("diversity_ratio", 1.0) < MIN_DIVERSITY:
        return True
    return measurement.get("high_quality", 1.0) < MIN_HIGH_QUALITY


def reachable_modes(measurement: dict) -> float:
    """The modes that perfect samples would cover in expectation: K (1 - (1 - 1/K)^N) for K
    modes and N samples (865 of stacked digits' 1,000 with the probe's 2,000 samples; all of
    the 2D mixtures' 8 or 25 with 2,500)."""
    modes = measurement["num_modes"]
    samples = measurement.get("num_samples") or math.inf
    return modes * (1 - (1 - 1 / modes) ** samples)


def onset(measurements: list[dict]) -> int | None:
    """The step where the failed stretch that lasts to the end begins (None: not failed)."""
    start = None
    for measurement in measurements:
        if is_failed(measurement):
            start = measurement["step"] if start is None else start
        else:
            start = None
    return start


def score_run(recipe: Recipe, seed: int, folder: Path) -> dict:
    measurements = read_quality(folder)
    alarms = read_alarms(folder)
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for alarm in alarms:
        first.setdefault(alarm.detector, alarm.step)
        counts[alarm.detector] = counts.get(alarm.detector, 0) + 1
    start = onset(measurements)
    right = sorted(alarm.step for alarm in alarms if alarm.detector in recipe.caught_by)
    alarm_step = right[0] if right else None
    if start is not None:
        # The right detector's latest alarm by the deadline: a detector repeats its alarm
        # every cooldown while a failure lasts, so this is its view when the failure set in.
        in_time = [step for step in right if step <= start + MAX_DELAY]
        alarm_step = in_time[-1] if in_time else alarm_step
    last = measurements[-1] if measurements else {}
    return {
        "recipe": recipe.name,
        "kind": "failure" if recipe.caught_by else "control",
        "seed": seed,
        "caught_by": ",".join(recipe.caught_by),
        "steps": json.loads((folder / "timing.json").read_text())["steps"],
        "failed": start is not None,
        "onset": start,
        "alarm_step": alarm_step,
        "delay": None if alarm_step is None or start is None else alarm_step - start,
        "caught": start is not None and alarm_step is not None and alarm_step <= start + MAX_DELAY,
        "final_modes": f"{last.get('modes_covered', 0):.0f}/{last.get('num_modes', 0):.0f}",
        "final_high_quality": last.get("high_quality"),
        "alarms": json.dumps({name: [first[name], counts[name]] for name in first}),
    }


FIELDS = (
    "recipe", "kind", "seed", "caught_by", "steps", "failed", "onset", "alarm_step", "delay",
    "caught", "final_modes", "final_high_quality", "alarms",
)  # fmt: skip


def matrix(rows: list[dict]) -> str:
    """Detector x recipe: for a failing recipe, its detector's catches and worst delay (and
    the runs where other detectors fired too); for a control, the alarms, all false."""
    short = {
        name: name.replace("Discriminator", "D").replace("Generator", "G") for name in DETECTORS
    }
    header = "| recipe | failed runs | onset (steps) | " + " | ".join(short.values()) + " |"
    lines = [header, "|" + "---|" * (3 + len(DETECTORS))]
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        group = [row for row in rows if row["recipe"] == recipe]
        failing = [row for row in group if row["failed"]]
        is_control = group[0]["kind"] == "control"
        onsets = [row["onset"] for row in failing]
        onset_text = "-" if not onsets else f"{min(onsets)}-{max(onsets)}"
        onset_text = str(onsets[0]) if onsets and min(onsets) == max(onsets) else onset_text
        cells = []
        for name in DETECTORS:
            fired = [row for row in group if name in json.loads(row["alarms"])]
            if is_control:
                total = sum(json.loads(row["alarms"])[name][1] for row in fired)
                cells.append(f"**{total} false**" if total else "0")
            elif name in group[0]["caught_by"].split(","):
                caught = [row for row in failing if row["caught"]]
                delays = [row["delay"] for row in caught]
                worst = f", worst {max(delays):+d}" if delays else ""
                cells.append(f"**{len(caught)}/{len(failing)} caught{worst}**")
            else:
                cells.append(f"{len(fired)}/{len(group)}" if fired else "")
        label = f"{recipe} (control)" if is_control else recipe
        lines.append(
            f"| {label} | {len(failing)}/{len(group)} | {onset_text} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def detector_summary(rows: list[dict]) -> str:
    """Per detector: recall on the failing runs it must catch, median and worst delay, and
    its false alarms on the controls."""
    lines = [
        "| detector | recipes it must catch | recall | median delay | worst delay | false alarms |",
        "|---|---|---|---|---|---|",
    ]
    controls = [row for row in rows if row["kind"] == "control"]
    for name in DETECTORS:
        mine = [row for row in rows if row["failed"] and name in row["caught_by"].split(",")]
        recipes = ", ".join(dict.fromkeys(row["recipe"] for row in mine)) or "-"
        caught = [row for row in mine if row["caught"]]
        delays = [row["delay"] for row in caught]
        false = sum(json.loads(row["alarms"]).get(name, [0, 0])[1] for row in controls)
        recall = f"{len(caught)}/{len(mine)}" if mine else "-"
        median = f"{statistics.median(delays):+.0f}" if delays else "-"
        worst = f"{max(delays):+d}" if delays else "-"
        lines.append(f"| {name} | {recipes} | {recall} | {median} | {worst} | {false} |")
    return "\n".join(lines)


def runs_table(rows: list[dict]) -> str:
    lines = [
        "| recipe | seed | steps | failed | onset | right alarm | delay | final modes | alarms "
        "(detector: first step, count) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        alarms = json.loads(row["alarms"])
        alarm_text = "; ".join(f"{name} {step} ({n})" for name, (step, n) in alarms.items())
        lines.append(
            f"| {row['recipe']} | {row['seed']} | {row['steps']}"
            f" | {'yes' if row['failed'] else 'no'}"
            f" | {row['onset'] if row['onset'] is not None else '-'}"
            f" | {row['alarm_step'] if row['alarm_step'] is not None else '-'}"
            f" | {'-' if row['delay'] is None else format(row['delay'], '+d')}"
            f" | {row['final_modes']} | {alarm_text or 'none'} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    failing = [row for row in rows if row["kind"] == "failure"]
    not_failed = [f"{row['recipe']} seed {row['seed']}" for row in failing if not row["failed"]]
    missed = [
        f"{row['recipe']} seed {row['seed']}"
        for row in failing
        if row["failed"] and not row["caught"]
    ]
    false = [
        f"{row['recipe']} seed {row['seed']}"
        for row in rows
        if row["kind"] == "control" and json.loads(row["alarms"])
    ]
    met = not (not_failed or missed or false)
    lines = [f"**Target {'met' if met else 'not met'}** over {len(rows)} runs."]
    if not_failed:
        lines.append(f"Failure runs that did not fail: {', '.join(not_failed)}.")
    if missed:
        lines.append(f"Failing runs not caught within {MAX_DELAY} steps: {', '.join(missed)}.")
    if false:
        lines.append(f"Control runs with alarms: {', '.join(false)}.")
    return " ".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", default=None, help="comma-separated recipe names to run")
    parser.add_argument("--controls", default=",".join(CONTROLS), help="comma-separated paths")
    parser.add_argument("--runs-root", default="runs/failure_zoo")
    parser.add_argument("--out", default="docs/results/failure_zoo.md")
    parser.add_argument("--rerun", action="store_true", help="rerun finished runs too")
    options = parser.parse_args()
    recipes = failure_recipes()
    recipes += [Recipe(ROOT / path, ()) for path in options.controls.split(",") if path]
    if options.only:
        wanted = set(options.only.split(","))
        recipes = [recipe for recipe in recipes if recipe.name in wanted]
    runs_root = ROOT / options.runs_root
    jobs = [(recipe, seed) for recipe in recipes for seed in range(options.seeds)]
    # Long runs first, so the pool does not end on one of them alone.
    jobs.sort(key=lambda job: job[0].is_2d)
    with ThreadPoolExecutor(options.jobs) as pool:
        list(pool.map(lambda job: fit(*job, runs_root, options.rerun), jobs))
    rows = [score_run(recipe, seed, run_dir(runs_root, recipe, seed)) for recipe, seed in jobs]
    order = {recipe.name: index for index, recipe in enumerate(recipes)}
    rows.sort(key=lambda row: (order[row["recipe"]], row["seed"]))
    out = ROOT / options.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    command = "python benchmarks/failure_zoo.py " + " ".join(sys.argv[1:])
    text = (
        f"# The failure zoo: every detector against runs that fail in known ways\n\n"
        f"Made by `{command.strip()}` ({options.jobs} runs at a time, one thread each, on a "
        f"2-core CPU), every detector at the settings of `benchmarks/overlays/monitors/` (the "
        f"defaults, and `LossOscillation(max_variation=1.5)` on the digits). How failure, onset "
        f"and a catch "
        f"are defined: the docstring of `benchmarks/failure_zoo.py`. A cell of a failing recipe "
        f"gives, for the detector that must catch it, the failed runs it caught within "
        f"{MAX_DELAY} steps of the onset and the worst delay in steps (negative: before the "
        f"probe saw the failure); for other detectors, the runs in which they fired too. A "
        f"control's cell counts its alarms, all false.\n\n{verdict(rows)}\n\n{matrix(rows)}\n\n"
        f"## Per detector\n\n{detector_summary(rows)}\n\n## Every run\n\n{runs_table(rows)}\n"
    )
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
