"""``gan-tricks ablate``: which tricks help on my data, measured rather than listed.

The base recipe runs with every setting of the named tricks switched on (one at a time plus
all together, ``oat``; or every combination, ``full``), ``seeds`` seeds each, as separate
``gan-tricks fit`` processes, as many at once as the machine has cores (one thread each). A
trick is a recipe overlay: a YAML file whose ``callbacks+:`` and model options are laid over
the base (``--config BASE --config TRICK``), given by path or by name in ``--overlays``.

Every finished run is a row of ``runs.csv`` in the output folder, written as it ends, so a
killed ablation picks up where it stopped: finished runs are skipped, and a run killed midway
resumes from its last checkpoint (``--ckpt_path last``, exactly). At the end: ``summary.csv``
and ``summary.md`` (mean and spread of every metric per setting, time per step, and which
tricks helped significantly: Welch's t-test against the base, p < 0.05), ``metrics.png``
(bars with error bars per metric) and ``curves.png`` (the quality probe's curves per setting).

``--wandb-sweep`` writes the same design as a W&B sweep (``sweep.yaml``): each agent runs one
(setting, seed) through ``gan-tricks ablate ... --setting S --seed N``, logged to W&B with the
ablation as its group and the setting's tricks as tags.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gan_tricks.engine.recorder import EVALUATION_FILE
from gan_tricks.errors import ConfigError
from gan_tricks.packaged import OVERLAYS, find_recipe

DESIGNS = ("oat", "full")
BASE_SETTING = "base"
RUNS_FILE = "runs.csv"
# Metrics where lower is better; every other numeric metric is higher-is-better.
LOWER_IS_BETTER = ("reverse_kl", "fid", "kid", "kid_std", "unreadable", "seconds_per_step")
# The metrics the summary tests for significance, when the data has them.
HEADLINE_METRICS = ("modes_covered", "high_quality", "reverse_kl", "fid", "precision", "recall")
SIGNIFICANCE_LEVEL = 0.05
PROBE_MEASUREMENTS = 10  # quality-probe points per run, for the curves


@dataclass(frozen=True)
class Setting:
    """One arm of the ablation: the base recipe with ``tricks`` switched on."""

    tricks: tuple[str, ...]

    @property
    def name(self) -> str:
        return "+".join(self.tricks) if self.tricks else BASE_SETTING


def design(tricks: list[str], kind: str = "oat") -> list[Setting]:
    """The settings of an ablation: ``oat`` (the base, each trick alone, all of them) or
    ``full`` (every subset, 2^k settings), base first."""
    if kind not in DESIGNS:
        raise ConfigError(f"--design must be one of {', '.join(DESIGNS)} (got {kind!r}).")
    if len(set(tricks)) != len(tricks) or not tricks:
        raise ConfigError("--tricks must name at least one trick, each once.")
    if kind == "full":
        subsets = itertools.chain.from_iterable(
            itertools.combinations(tricks, size) for size in range(len(tricks) + 1)
        )
        return [Setting(tuple(subset)) for subset in subsets]
    settings = [Setting(()), *(Setting((trick,)) for trick in tricks)]
    if len(tricks) > 1:
        settings.append(Setting(tuple(tricks)))
    return settings


def resolve_overlay(trick: str, overlays: Path) -> Path:
    """A trick's overlay file: ``trick`` itself if it is a YAML file, else
    ``overlays/<trick>.yaml``."""
    path = Path(trick)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"the trick overlay {trick} does not exist.")
        return path
    candidate = overlays / f"{trick}.yaml"
    if not candidate.is_file():
        known = sorted(p.stem for p in overlays.glob("*.yaml")) if overlays.is_dir() else []
        raise ConfigError(
            f"no overlay named {trick!r} in {overlays}; give a YAML path or one of: "
            f"{', '.join(known) or '(none there)'}."
        )
    return candidate


# ---------------------------------------------------------------- running
def run_command(
    base: Path, overlays: list[Path], seed: int, name: str, runs_root: Path, extra: list[str]
) -> list[str]:
    configs = [arg for path in [base, *overlays] for arg in ("--config", str(path))]
    return [
        sys.executable, "-m", "gan_tricks.cli", "fit", *configs,
        "--seed_everything", str(seed), "--data.init_args.seed", str(seed),
        "--name", name, "--trainer.default_root_dir", str(runs_root),
        "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


def run_one(
    setting: Setting, seed: int, plan: Plan, wandb: str = "off", env: dict | None = None
) -> dict[str, Any]:
    """Fit and evaluate one (setting, seed); its row of ``runs.csv``."""
    name = f"{setting.name}-seed{seed}"
    run_dir = plan.runs_root / name
    extra = [*plan.extra, "--wandb", wandb, "--config", str(plan.probe_overlay)]
    finished = (run_dir / EVALUATION_FILE).is_file()  # written when its training ended
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        extra += ["--ckpt_path", "last"]  # killed midway: continue it exactly
    elif run_dir.exists():
        extra += ["--overwrite", "true"]  # killed before its first checkpoint
    overlays = [plan.overlay_paths[trick] for trick in setting.tricks]
    command = run_command(plan.base, overlays, seed, name, plan.runs_root, extra)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env or {})}
    if not finished:
        result = subprocess.run(command, env=environment, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{result.stderr[-3000:]}")
    # The probe evaluated the last state in the fit's own process (gan-tricks evaluate's
    # protocol): no second process loading the checkpoint again.
    metrics = json.loads((run_dir / EVALUATION_FILE).read_text())
    timing = json.loads((run_dir / "timing.json").read_text())
    row = {"setting": setting.name, "seed": seed}
    row |= {k: v for k, v in metrics.items() if isinstance(v, int | float) and k != "seed"}
    row |= {k: timing[k] for k in ("steps", "seconds_per_step")}
    return row


@dataclass
class Plan:
    base: Path
    settings: list[Setting]
    seeds: list[int]
    out: Path
    overlay_paths: dict[str, Path]
    extra: list[str]

    @property
    def runs_root(self) -> Path:
        return self.out / "runs"

    @property
    def probe_overlay(self) -> Path:
        return self.out / "probe.yaml"

    def jobs(self) -> list[tuple[Setting, int]]:
        return [(setting, seed) for setting in self.settings for seed in self.seeds]


def read_runs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for key, value in row.items():
            if key != "setting":
                row[key] = _number(value)
    return rows


def _number(value: str | None) -> float | int | None:
    if value in (None, ""):
        return None
    number = float(value)
    return int(number) if number.is_integer() and "." not in value else number


def run_plan(plan: Plan, jobs: int) -> list[dict[str, Any]]:
    """Every (setting, seed) of ``plan`` not yet in ``runs.csv``, ``jobs`` at a time; all rows."""
    plan.out.mkdir(parents=True, exist_ok=True)
    runs_file = plan.out / RUNS_FILE
    rows = read_runs(runs_file)
    done = {(row["setting"], int(row["seed"])) for row in rows}
    todo = [(s, seed) for s, seed in plan.jobs() if (s.name, seed) not in done]
    print(
        f"gan-tricks ablate: {len(plan.jobs())} runs, {len(done)} finished already, "
        f"{len(todo)} to go, {jobs} at a time",
        file=sys.stderr,
    )
    lock = threading.Lock()

    def run_and_record(job: tuple[Setting, int]) -> None:
        row = run_one(*job, plan)
        with lock:
            rows.append(row)
            _write_rows(runs_file, rows)
            print(f"  done {job[0].name} seed {job[1]}", file=sys.stderr)

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        list(pool.map(run_and_record, todo))
    return rows


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = ["setting", "seed", *sorted({k for row in rows for k in row} - {"setting", "seed"})]
    temporary = path.with_suffix(".csv.partial")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)  # a kill mid-write keeps the previous table


# ---------------------------------------------------------------- analysis
def welch_p_value(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test for equal means (None with fewer than 2 values
    on a side, or no spread at all)."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats

    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        return 0.0 if statistics.mean(a) != statistics.mean(b) else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def summarize(rows: list[dict[str, Any]], settings: list[Setting]) -> list[dict[str, Any]]:
    """Per setting: runs, mean and standard deviation of every numeric metric."""
    metrics = sorted(
        {k for row in rows for k, v in row.items() if isinstance(v, int | float)} - {"seed"}
    )
    summary = []
    for setting in settings:
        mine = [row for row in rows if row["setting"] == setting.name]
        entry: dict[str, Any] = {"setting": setting.name, "runs": len(mine)}
        for metric in metrics:
            values = [row[metric] for row in mine if isinstance(row.get(metric), int | float)]
            values = [v for v in values if math.isfinite(v)]
            entry[f"{metric}_mean"] = statistics.mean(values) if values else None
            entry[f"{metric}_sd"] = statistics.stdev(values) if len(values) > 1 else None
        summary.append(entry)
    return summary


def verdicts(rows: list[dict[str, Any]], settings: list[Setting]) -> list[str]:
    """One line per (setting, headline metric) that differs significantly from the base."""
    lines = []
    base = [row for row in rows if row["setting"] == BASE_SETTING]
    for setting in settings:
        if not setting.tricks:
            continue
        mine = [row for row in rows if row["setting"] == setting.name]
        for metric in HEADLINE_METRICS:
            a = [r[metric] for r in mine if isinstance(r.get(metric), int | float)]
            b = [r[metric] for r in base if isinstance(r.get(metric), int | float)]
            p = welch_p_value(a, b)
            if p is None or p >= SIGNIFICANCE_LEVEL:
                continue
            better = (statistics.mean(a) < statistics.mean(b)) == (metric in LOWER_IS_BETTER)
            lines.append(
                f"{setting.name} {'helped' if better else 'hurt'}: {metric} "
                f"{statistics.mean(b):.3g} -> {statistics.mean(a):.3g} (Welch p = {p:.3g})"
            )
    return lines


def fid_mode_agreement(rows: list[dict[str, Any]]) -> str | None:
    """Spearman's rank correlation between FID and modes covered over every run, in words
    (None unless the runs have both): a feature-space FID that ranks runs like the mode count
    does reads near -1 (lower FID, more modes)."""
    pairs = [
        (row["fid"], row["modes_covered"])
        for row in rows
        if all(
            isinstance(row.get(k), int | float) and math.isfinite(row[k])
            for k in ("fid", "modes_covered")
        )
    ]
    if len(pairs) < 3:
        return None
    from scipy import stats

    rho, p = stats.spearmanr([f for f, _ in pairs], [m for _, m in pairs])
    return (
        f"Spearman's rank correlation of FID and modes covered over the {len(pairs)} runs: "
        f"{rho:.3f} (p = {p:.2g}); -1 means FID ranks runs exactly as the mode count does."
    )


def markdown_table(summary: list[dict[str, Any]]) -> str:
    shown = [m for m in (*HEADLINE_METRICS, "kid", "density", "coverage", "seconds_per_step")]
    shown = [m for m in shown if any(entry.get(f"{m}_mean") is not None for entry in summary)]
    head = "| setting | runs | " + " | ".join(shown) + " |"
    lines = [head, "|" + "---|" * (len(shown) + 2)]
    for entry in summary:
        cells = []
        for metric in shown:
            mean, sd = entry.get(f"{metric}_mean"), entry.get(f"{metric}_sd")
            scale = 1000.0 if metric == "seconds_per_step" else 1.0
            if mean is None:
                cells.append("n/a")
            elif sd is None:
                cells.append(f"{mean * scale:.3g}")
            else:
                cells.append(f"{mean * scale:.3g} ± {sd * scale:.2g}")
        lines.append(f"| {entry['setting']} | {entry['runs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines).replace("| seconds_per_step |", "| ms / step |")


def write_outputs(plan: Plan, rows: list[dict[str, Any]], command: str) -> Path:
    summary = summarize(rows, plan.settings)
    with open(plan.out / "summary.csv", "w", newline="") as handle:
        fields = list(dict.fromkeys(k for entry in summary for k in entry))
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(summary)
    found = verdicts(rows, plan.settings)
    text = [
        f"# Ablation of {plan.base.name}",
        "",
        f"Made by `{command}`: {len(plan.settings)} settings x {len(plan.seeds)} seeds, one "
        "thread per run. Mean ± standard deviation over seeds; ms / step is the training "
        "loop's, start-up excluded.",
        "",
        markdown_table(summary),
        "",
        f"## Significant differences from the base (Welch's t-test, p < {SIGNIFICANCE_LEVEL})",
        "",
        *(f"- {line}" for line in found),
        *(["- none"] if not found else []),
        "",
        *([agreement, ""] if (agreement := fid_mode_agreement(rows)) else []),
        "![metrics](metrics.png)",
        "",
        "![curves](curves.png)",
        "",
    ]
    path = plan.out / "summary.md"
    path.write_text("\n".join(text))
    _plot_metrics(summary, plan.out / "metrics.png")
    _plot_curves(plan, plan.out / "curves.png")
    return path


def _plot_metrics(summary: list[dict[str, Any]], path: Path) -> None:
    from gan_tricks.plotting import figure_with_axes

    shown = [
        m
        for m in (*HEADLINE_METRICS, "seconds_per_step")
        if any(entry.get(f"{m}_mean") is not None for entry in summary)
    ]
    fig, axes = figure_with_axes(
        1, len(shown), figsize=(3.2 * len(shown), 3.6), dpi=100, squeeze=False
    )
    names = [_short(entry["setting"]) for entry in summary]
    for ax, metric in zip(axes[0], shown, strict=True):
        means = [entry.get(f"{metric}_mean") or 0.0 for entry in summary]
        errors = [entry.get(f"{metric}_sd") or 0.0 for entry in summary]
        ax.bar(range(len(names)), means, yerr=errors, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set_title(f"{metric} ({better} is better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def _short(setting: str, longest: int = 24) -> str:
    """A setting's name for a plot axis: long combinations as their trick count."""
    if len(setting) <= longest:
        return setting
    return f"{setting.count('+') + 1} tricks"


def _plot_curves(plan: Plan, path: Path) -> None:
    """The quality probe's headline metric over training, mean over seeds, per setting."""
    from gan_tricks.lightning.quality import read_quality
    from gan_tricks.plotting import figure_with_axes

    fig, axes = figure_with_axes(1, 1, figsize=(7, 4), dpi=100, squeeze=False)
    ax = axes[0][0]
    metric = None
    for setting in plan.settings:
        curves = [read_quality(plan.runs_root / f"{setting.name}-seed{s}") for s in plan.seeds]
        curves = [c for c in curves if c]
        if not curves:
            continue
        metric = metric or next((m for m in ("modes_covered", "fid") if m in curves[0][0]), None)
        if metric is None:
            continue
        steps = sorted({point["step"] for curve in curves for point in curve})
        means = []
        for step in steps:
            values = [p[metric] for c in curves for p in c if p["step"] == step and metric in p]
            means.append(statistics.mean(values) if values else math.nan)
        ax.plot(steps, means, label=_short(setting.name, longest=60))
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"{metric or 'quality'} (mean over seeds)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


# ---------------------------------------------------------------- W&B sweep
def sweep_config(plan: Plan, argv: list[str], name: str) -> dict[str, Any]:
    """A W&B grid sweep over (setting, seed): each agent runs one through ``gan-tricks
    ablate ARGV --setting S --seed N`` (W&B fills ``${args}``)."""
    return {
        "name": name,
        "method": "grid",
        "command": ["gan-tricks", "ablate", *argv, "${args}"],
        "parameters": {
            "setting": {"values": [setting.name for setting in plan.settings]},
            "seed": {"values": plan.seeds},
        },
    }


# ---------------------------------------------------------------- the command
def ablate_command(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="gan-tricks ablate",
        description="Run a base recipe with every setting of the named tricks, several seeds "
        "each, in parallel local processes (resumable); write tables, plots and which tricks "
        "helped.",
    )
    parser.add_argument(
        "--config", required=True, help="the base recipe: a YAML path or a packaged name"
    )
    parser.add_argument(
        "--tricks", required=True, help="comma-separated trick overlays: names or YAML paths"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 per setting")
    parser.add_argument("--budget", type=int, default=None, help="iterations per run")
    parser.add_argument("--design", default="oat", help="oat (one at a time + all) or full")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once")
    parser.add_argument("--out", default=None, help="output folder (default ablations/BASE)")
    parser.add_argument(
        "--overlays", default=None, help="folder of named overlays (default: overlays/BASE/ "
        "or overlays/ beside the base recipe, then the packaged overlays/BASE/)",
    )  # fmt: skip
    parser.add_argument("--wandb-sweep", action="store_true", help="write sweep.yaml, run none")
    parser.add_argument("--setting", default=None, help="run only this setting (sweep agents)")
    parser.add_argument("--seed", type=int, default=None, help="with --setting: only this seed")
    options = parser.parse_args(args)

    base = Path(options.config)
    if not base.is_file():
        base = find_recipe(options.config) or base
    if not base.is_file():
        raise ConfigError(
            f"the base recipe {options.config} does not exist; give a YAML path or the name of "
            "a packaged recipe (gan-tricks recipes lists them)."
        )
    tricks = [t.strip() for t in options.tricks.split(",") if t.strip()]
    if options.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {options.seeds}).")
    if options.budget is not None and options.budget < 1:
        raise ConfigError(f"--budget must be at least 1 (got {options.budget}).")
    overlays = _overlay_folder(base, options.overlays)
    plan = Plan(
        base=base,
        settings=design(tricks, options.design),
        seeds=list(range(options.seeds)),
        out=Path(options.out or Path("ablations") / base.stem),
        overlay_paths={trick: resolve_overlay(trick, overlays) for trick in tricks},
        extra=["--trainer.max_steps", str(options.budget)] if options.budget else [],
    )
    plan.out.mkdir(parents=True, exist_ok=True)
    _write_probe_overlay(plan, options.budget)
    if options.wandb_sweep:
        argv = [a for a in args if a != "--wandb-sweep"]
        config = sweep_config(plan, argv, f"ablate-{base.stem}")
        (plan.out / "sweep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"wrote {plan.out / 'sweep.yaml'}: wandb sweep {plan.out / 'sweep.yaml'}, then "
              "wandb agent <sweep id> on each machine")  # fmt: skip
        return 0
    if options.setting is not None:
        return _run_single(plan, options.setting, options.seed)
    rows = run_plan(plan, options.jobs)
    path = write_outputs(plan, rows, "gan-tricks ablate " + " ".join(args))
    print(path.read_text())
    return 0


def _overlay_folder(base: Path, given: str | None) -> Path:
    """Where the named overlays are: ``--overlays``, else ``overlays/<base name>/`` or
    ``overlays/`` beside the base recipe, else the packaged ``overlays/<base name>/``."""
    if given is not None:
        return Path(given)
    beside = base.parent / "overlays"
    for folder in (beside / base.stem, beside):
        if folder.is_dir() and any(folder.glob("*.yaml")):
            return folder
    return OVERLAYS / base.stem


def _write_probe_overlay(plan: Plan, budget: int | None) -> None:
    """The quality probe for the curves: ``PROBE_MEASUREMENTS`` points over the run."""
    steps = budget or _recipe_steps(plan.base)
    every = max(1, steps // PROBE_MEASUREMENTS)
    probe = {
        "trainer": {
            "callbacks+": [
                {
                    "class_path": "gan_tricks.lightning.QualityProbe",
                    "init_args": {"every": every, "num_samples": 2000, "final_evaluation": True},
                }
            ]
        }
    }
    plan.probe_overlay.write_text(yaml.safe_dump(probe))


def _recipe_steps(recipe: Path) -> int:
    content = yaml.safe_load(recipe.read_text()) or {}
    return int((content.get("trainer") or {}).get("max_steps") or 1000)


def _run_single(plan: Plan, setting_name: str, seed: int | None) -> int:
    """One (setting, seed) with W&B: what a sweep agent runs."""
    by_name = {setting.name: setting for setting in plan.settings}
    if setting_name not in by_name:
        raise ConfigError(
            f"--setting {setting_name!r} is not in this design; one of {', '.join(by_name)}."
        )
    setting = by_name[setting_name]
    env = {
        "WANDB_RUN_GROUP": f"ablate-{plan.base.stem}",
        "WANDB_TAGS": ",".join(setting.tricks or (BASE_SETTING,)),
    }
    row = run_one(setting, seed or 0, plan, wandb="auto", env=env)
    print(json.dumps(row))
    return 0
