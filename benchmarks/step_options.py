"""What the speed options and lazy regularization buy, on the digits DCGAN, in one process.

    python benchmarks/step_options.py --steps 300 --rounds 3 --out docs/results/step_options

Toolkit runs only (``GANModule`` in a ``pl.Trainer``, as ``benchmarks/step_overhead.py`` sets
it up), one thread, the arms of each group interleaved round by round:

* **layout and compilation**: the recipe as it is, with ``model.channels_last``, and with
  ``model.compile`` (``torch.compile`` of G and D; its first ``--compile-warmup`` iterations,
  which compile, are left out of the timing: the number is the steady state);
* **lazy regularization**: R1 (gamma 10, D without BatchNorm) on every D step, every 4th and
  every 16th (StyleGAN2's lazy regularization, the penalty scaled by the interval), against no
  penalty at all. The saving is the share of the penalty's cost that laziness removes;
* **approximate R1**: exact R1 against its finite-difference form (``ApproximateR1``, sigma
  0.01, one more forward of D and no double backward), eager and under ``model.compile``
  (which exact R1 cannot use), every D step.

Writes ``OUT.md`` and ``OUT.json``; times are the median over rounds of the mean step time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from step_overhead import R1_GAMMA, toolkit_run  # noqa: E402

from gan_tricks.tricks import ApproximateR1, GradientPenalty  # noqa: E402


def r1(every: int) -> Callable[[], tuple]:
    return lambda: (GradientPenalty(kind="r1", weight=R1_GAMMA, every=every),)


def approximate_r1() -> tuple:
    return (ApproximateR1(weight=R1_GAMMA, sigma=0.01),)


def no_penalty() -> tuple:
    return ()


def arms(compile_warmup: int, warmup: int) -> dict[str, dict[str, tuple]]:
    """Group -> arm -> (setting, warm-up iterations, the tricks' factory, module options)."""
    return {
        "layout and compilation": {
            "as is": ("none", warmup, no_penalty, {}),
            "channels_last": ("none", warmup, no_penalty, {"channels_last": True}),
            "compile": ("none", compile_warmup, no_penalty, {"compile": True}),
        },
        "lazy regularization": {
            "no penalty (D without BatchNorm)": ("gradient_penalty", warmup, no_penalty, {}),
            **{f"R1 every {k}": ("gradient_penalty", warmup, r1(k), {}) for k in (1, 4, 16)},
        },
        "approximate R1": {
            "no penalty (D without BatchNorm)": ("gradient_penalty", warmup, no_penalty, {}),
            "R1": ("gradient_penalty", warmup, r1(1), {}),
            "approximate R1": ("gradient_penalty", warmup, approximate_r1, {}),
            "approximate R1, compiled": (
                "gradient_penalty",
                compile_warmup,
                approximate_r1,
                {"compile": True},
            ),
        },
    }


def run_arm(spec: tuple, steps: int, folder: Path) -> float:
    setting, warmup, make_tricks, options = spec
    tricks = make_tricks()
    # "gradient_penalty" only shapes the networks (D without BatchNorm); the penalty, if any,
    # is the trick given here.
    seconds, _ = toolkit_run(
        "plain_d" if setting == "gradient_penalty" else setting,
        steps,
        warmup,
        folder,
        extra_tricks=tricks,
        **options,
    )
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--compile-warmup", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--groups", default="layout and compilation,lazy regularization,approximate R1"
    )
    parser.add_argument("--out", default="docs/results/step_options")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for group, group_arms in arms(args.compile_warmup, args.warmup).items():
            if group not in args.groups.split(","):
                continue
            times: dict[str, list[float]] = {name: [] for name in group_arms}
            for round_index in range(args.rounds):
                names = list(group_arms)
                for name in names if round_index % 2 == 0 else names[::-1]:
                    times[name].append(1000 * run_arm(group_arms[name], args.steps, Path(scratch)))
                    print(f"{group} / {name}: {times[name][-1]:.2f} ms", flush=True)
            results[group] = times
    write_report(results, args)
    return 0


def write_report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Speed options and lazy regularization (digits DCGAN, toolkit step)",
        "",
        f"Made by `python benchmarks/step_options.py --steps {args.steps} --rounds {args.rounds} "
        f"--groups '{args.groups}' --out {args.out}` on a 2-core CPU, one thread. Median over "
        f"rounds of the mean time per iteration ({args.steps} timed iterations after "
        f"{args.warmup} untimed, {args.compile_warmup} for torch.compile).",
    ]
    for group, times in results.items():
        first = statistics.median(next(iter(times.values())))
        lines += ["", f"## {group}", "", "| arm | ms / step | vs first row | rounds (ms) |"]
        lines.append("|---|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            rounds = ", ".join(f"{v:.2f}" for v in values)
            lines.append(f"| {name} | {median:.2f} | {median / first:.3f}x | {rounds} |")
        if group == "lazy regularization":
            base = first
            every = {k: statistics.median(times[f"R1 every {k}"]) for k in (1, 4, 16)}
            cost = every[1] - base
            for k in (4, 16):
                saved = (every[1] - every[k]) / cost if cost > 0 else float("nan")
                lines.append(f"\nEvery {k}: {100 * saved:.0f} % of the penalty's cost saved.")
        if group == "approximate R1":
            base = statistics.median(times["no penalty (D without BatchNorm)"])
            exact = statistics.median(times["R1"])
            for name in ("approximate R1", "approximate R1, compiled"):
                cost = statistics.median(times[name]) - base
                lines.append(
                    f"\n{name}: {cost:.2f} ms of penalty per step against R1's "
                    f"{exact - base:.2f} ms ({cost / (exact - base):.2f}x)."
                )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
