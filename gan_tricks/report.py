"""``gan-tricks report RUN_DIR``: one self-contained HTML page of a run, readable without W&B.

It reads what a run folder holds (``metrics.csv``, ``alarms.jsonl``, the sample snapshots,
``config.yaml``, ``timing.json``) and writes ``report.html`` with every picture embedded, plus
``report.png``: the losses and the other signals over the run, each alarm a vertical line.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

import yaml

from gan_tricks.engine.recorder import EVALUATION_FILE, QUALITY_FILE
from gan_tricks.errors import ConfigError
from gan_tricks.monitors.base import Alarm, read_alarms
from gan_tricks.plotting import figure_with_axes
from gan_tricks.run import SNAPSHOT_FOLDER
from gan_tricks.trust import safe_yaml

SEVERITY_COLOURS = {"warning": "tab:orange", "error": "tab:red"}
# Signals drawn together in one panel; every other logged signal gets a panel of its own.
PANELS = (
    ("losses", ("train/d_loss", "train/g_loss")),
    ("D's mean logit on real and fake", ("train/d_real", "train/d_fake")),
    ("gradient norms", ("train/d_grad_norm", "train/g_grad_norm")),
)
LOG_SCALE = ("grad_norm", "grad_max_layer")


def read_metrics(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Each logged column of ``metrics.csv`` as (step, value) pairs, empty cells skipped."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return {}
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            step = row.get("step")
            if not step:
                continue
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                series.setdefault(key, []).append((int(float(step)), float(value)))
    return series


def _panels(series: dict[str, list[tuple[int, float]]]) -> list[tuple[str, list[str]]]:
    panels, used = [], set()
    for title, keys in PANELS:
        present = [key for key in keys if key in series]
        if present:
            panels.append((title, present))
            used.update(present)
    for key in sorted(series):
        logged = key.split("/", 1)[0] in ("train", "monitor", "quality")
        varies = len({value for _, value in series[key]}) > 1  # a constant says nothing
        if key not in used and logged and varies:
            name = key.split("/", 1)[1]
            panels.append((f"quality: {name}" if key.startswith("quality/") else name, [key]))
    return panels


def detector_initials(name: str) -> str:
    """``DiscriminatorOverpowering`` -> ``DO``: a short label for an alarm line."""
    return "".join(letter for letter in name if letter.isupper()) or name[:2]


def alarm_labels(
    alarms: list[Alarm], span: float, min_gap: float = 0.04
) -> list[tuple[int, str, str]]:
    """Where the alarm lines get their labels: one per group of alarms closer together than
    ``min_gap`` of the x-axis ``span`` (labels of the same height would overlap), naming each
    detector of the group once; (step, label, the group's worst severity)."""
    groups: list[list[Alarm]] = []
    for alarm in sorted(alarms, key=lambda a: a.step):
        if groups and alarm.step - groups[-1][0].step < min_gap * span:
            groups[-1].append(alarm)
        else:
            groups.append([alarm])
    labels = []
    for group in groups:
        names = dict.fromkeys(detector_initials(a.detector) for a in group)
        severity = "error" if any(a.severity == "error" for a in group) else group[0].severity
        labels.append((group[0].step, ",".join(names), severity))
    return labels


def plot_signals(
    series: dict[str, list[tuple[int, float]]], alarms: list[Alarm], path: Path | None = None
) -> bytes:
    """Every signal panel with the alarms marked; PNG bytes (also written to ``path``)."""
    panels = _panels(series)
    steps_seen = [step for points in series.values() for step, _ in points]
    steps_seen += [alarm.step for alarm in alarms]
    span = (max(steps_seen) - min(steps_seen)) if steps_seen else 0
    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = figure_with_axes(
        rows, columns, figsize=(5 * columns, 3 * rows), dpi=90, squeeze=False
    )
    for ax, (title, keys) in zip(axes.flat, panels, strict=False):
        for key in keys:
            steps, values = zip(*series[key], strict=True)
            ax.plot(steps, values, linewidth=1, label=key.split("/", 1)[1])
        if any(part in keys[0] for part in LOG_SCALE) and all(
            v > 0 for key in keys for _, v in series[key]
        ):
            ax.set_yscale("log")
        for alarm in alarms:
            ax.axvline(alarm.step, color=SEVERITY_COLOURS.get(alarm.severity, "k"), alpha=0.6)
        for step, label, severity in alarm_labels(alarms, span):
            # Which detector: its initials along the line, at the top of the panel.
            ax.annotate(
                label,
                (step, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=6,
                color=SEVERITY_COLOURS.get(severity, "k"),
                ha="right",
                va="top",
            )
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.supxlabel(
        "iteration (G step); vertical lines: alarms (orange warning, red error), labelled with "
        "the detector's initials (DO: DiscriminatorOverpowering, ...)"
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    if path is not None:
        path.write_bytes(data)
    return data


def _image_tag(data: bytes, alt: str, width: str = "100%") -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}" width="{width}">'


def _snapshots(run_dir: Path) -> list[tuple[str, bytes]]:
    pictures = sorted((run_dir / SNAPSHOT_FOLDER).glob("step_*.png"))
    shots = [(f"iteration {int(p.stem.split('_')[1]):,}", p.read_bytes()) for p in pictures]
    if (run_dir / "samples.png").is_file():
        shots.append(("end of the run", (run_dir / "samples.png").read_bytes()))
    return shots


def _detectors_on(config_text: str) -> list[str]:
    """The detectors a run's ``config.yaml`` switched on, by class name."""
    try:
        config = safe_yaml(config_text, "the run's config.yaml") or {}
    except yaml.YAMLError:
        return []
    model = config.get("model") if isinstance(config, dict) else None
    entries = (model.get("detectors") if isinstance(model, dict) else None) or []
    entries = [entry for entry in entries if isinstance(entry, dict)]
    return [str(entry.get("class_path", "?")).rsplit(".", 1)[-1] for entry in entries]


def _evaluation_table(run_dir: Path) -> str:
    """The run's last measurement: ``evaluation.json`` (the whole protocol) if it was written,
    else the quality probe's last line; nothing if neither."""
    measured: dict = {}
    source = ""
    if (run_dir / EVALUATION_FILE).is_file():
        measured, source = json.loads((run_dir / EVALUATION_FILE).read_text()), "evaluation"
    elif (run_dir / QUALITY_FILE).is_file():
        lines = (run_dir / QUALITY_FILE).read_text().split("\n")
        rows = [json.loads(line) for line in lines if line.strip()]
        if rows:
            measured, source = rows[-1], "quality probe, last measurement"
    numbers = {
        key: value
        for key, value in measured.items()
        if isinstance(value, int | float) and key not in ("seed", "wall_time_s")
    }
    if not numbers:
        return (
            "<h2>Evaluation</h2><p>Not measured in the run; <code>gan-tricks evaluate "
            f"{html.escape(str(run_dir / 'checkpoints' / 'last.ckpt'))}</code> prints it.</p>"
        )
    rows = "".join(
        f"<tr><td>{html.escape(key)}</td><td>{value:.4g}</td></tr>"
        for key, value in numbers.items()
    )
    return f"<h2>Evaluation ({source})</h2><table>{rows}</table>"


def write_report(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Write ``report.html`` (and ``report.png``) for a run folder; the HTML's path."""
    run_dir = Path(run_dir)
    if not (run_dir / "metrics.csv").is_file():
        raise ConfigError(
            f"{run_dir} has no metrics.csv; give the folder of a run of gan-tricks fit."
        )
    series = read_metrics(run_dir)
    alarms = read_alarms(run_dir)
    summary = plot_signals(series, alarms, run_dir / "report.png")
    timing = run_dir / "timing.json"
    facts = json.loads(timing.read_text()) if timing.is_file() else {}
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""

    alarm_rows = "".join(
        f"<tr class='{html.escape(a.severity)}'><td>{a.step:,}</td><td>{html.escape(a.detector)}"
        f"</td><td>{html.escape(a.severity)}</td><td>{html.escape(a.message)}</td></tr>"
        for a in alarms
    )
    detectors = _detectors_on(config)
    watched = (
        f"<p>Detectors on: {html.escape(', '.join(detectors))}.</p>"
        if detectors
        else "<p>No detector was switched on in this run's recipe (model.detectors).</p>"
    )
    if alarms:
        alarms_html = (
            f"{watched}<table><tr><th>step</th><th>detector</th><th>severity</th>"
            f"<th>message</th></tr>{alarm_rows}</table>"
        )
    elif detectors:
        alarms_html = f"{watched}<p>No alarm: no detector saw this run fail.</p>"
    else:
        alarms_html = watched
    evaluation_html = _evaluation_table(run_dir)
    snapshots = "".join(
        f"<figure>{_image_tag(data, caption, '240')}<figcaption>{caption}</figcaption></figure>"
        for caption, data in _snapshots(run_dir)
    )
    steps = facts.get("steps")
    timing_html = (
        f"<p>{steps:,} iterations in {facts['train_seconds']:.0f} s of training "
        f"({1000 * facts['seconds_per_step']:.1f} ms per iteration).</p>"
        if steps
        else ""
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>gan-tricks report: {html.escape(run_dir.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1400px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
tr.error td {{ background: #fde0e0; }} tr.warning td {{ background: #fff2d6; }}
figure {{ display: inline-block; margin: 0 8px 8px 0; text-align: center; }}
pre {{ background: #f6f6f6; padding: 1em; overflow: auto; font-size: 12px; }}
</style></head><body>
<h1>Run {html.escape(run_dir.name)}</h1>
{timing_html}
<h2>Alarms ({len(alarms)})</h2>
{alarms_html}
{evaluation_html}
<h2>Signals</h2>
{_image_tag(summary, "signals over the run")}
<h2>Samples over time</h2>
{snapshots or "<p>No sample pictures in this run folder.</p>"}
<h2>Configuration</h2>
<pre>{html.escape(config)}</pre>
</body></html>
"""
    output = Path(output) if output else run_dir / "report.html"
    output.write_text(page)
    return output
