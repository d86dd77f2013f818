"""gan-tricks ablate: the design, the significance verdicts, a real resumable ablation, sweeps."""

import csv
from pathlib import Path

import pytest
import yaml

from gan_tricks.cli import main
from gan_tricks.errors import ConfigError
from gan_tricks.experiments.ablation import (
    Setting,
    design,
    fid_mode_agreement,
    resolve_overlay,
    verdicts,
    welch_p_value,
)

ROOT = Path(__file__).resolve().parent.parent
OVERLAYS = ROOT / "benchmarks" / "overlays" / "grid25"
RING8 = str(ROOT / "recipes" / "ring8.yaml")


def test_one_at_a_time_is_the_base_each_trick_and_all_of_them():
    names = [s.name for s in design(["a", "b", "c"], "oat")]
    assert names == ["base", "a", "b", "c", "a+b+c"]
    assert [s.name for s in design(["a"], "oat")] == ["base", "a"]


def test_the_full_design_is_every_subset():
    settings = design(["a", "b", "c"], "full")
    assert len(settings) == 8 and settings[0] == Setting(())
    assert {s.tricks for s in settings} == {
        (),
        ("a",),
        ("b",),
        ("c",),
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
        ("a", "b", "c"),
    }


@pytest.mark.parametrize(
    ("tricks", "kind", "says"),
    [
        (["a"], "grid", "--design must be one of"),
        (["a", "a"], "oat", "each once"),
        ([], "oat", "at least one"),
    ],
)
def test_a_bad_design_is_one_sentence(tricks, kind, says):
    with pytest.raises(ConfigError, match=says):
        design(tricks, kind)


def test_tricks_resolve_by_name_or_path(tmp_path):
    assert resolve_overlay("r1", OVERLAYS) == OVERLAYS / "r1.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("trainer: {}\n")
    assert resolve_overlay(str(own), OVERLAYS) == own
    with pytest.raises(ConfigError, match="no overlay named 'r3' .* r1"):
        resolve_overlay("r3", OVERLAYS)


def test_welch_p_value_matches_scipy_and_handles_degenerate_cases():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 4.0, 6.0]
    assert welch_p_value(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p_value([1.0], [2.0, 3.0]) is None
    assert welch_p_value([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert welch_p_value([2.0, 2.0], [3.0, 3.0]) == 0.0


def test_verdicts_name_what_helped_and_what_hurt():
    rows = [{"setting": "base", "modes_covered": m, "reverse_kl": k} for m, k in
            [(20, 1.0), (21, 1.1), (19, 0.9)]]  # fmt: skip
    rows += [{"setting": "r1", "modes_covered": m, "reverse_kl": k} for m, k in
             [(24, 0.5), (25, 0.4), (24, 0.45)]]  # fmt: skip
    rows += [{"setting": "noise", "modes_covered": m, "reverse_kl": k} for m, k in
             [(20, 2.0), (19, 2.2), (21, 2.1)]]  # fmt: skip
    lines = verdicts(rows, design(["r1", "noise"], "oat")[:3])
    assert any(line.startswith("r1 helped: modes_covered 20 -> 24.3") for line in lines)
    assert any(line.startswith("r1 helped: reverse_kl") for line in lines)
    assert any(line.startswith("noise hurt: reverse_kl 1 -> 2.1") for line in lines)
    assert not any(line.startswith("noise") and "modes_covered" in line for line in lines)


def rows_of(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def ablate(out: Path, *extra: str) -> int:
    return main([
        "ablate", "--config", RING8, "--tricks", "r1,label_smoothing", "--seeds", "1",
        "--budget", "30", "--jobs", "2", "--overlays", str(OVERLAYS), "--out", str(out), *extra,
    ])  # fmt: skip


def test_a_real_ablation_writes_its_tables_and_plots_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out = tmp_path / "ablation"
    assert ablate(out) == 0
    rows = rows_of(out / "runs.csv")
    assert sorted(r["setting"] for r in rows) == [
        "base",
        "label_smoothing",
        "r1",
        "r1+label_smoothing",
    ]
    assert all(0 <= int(r["modes_covered"]) <= 8 and int(r["steps"]) == 30 for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| r1+label_smoothing | 1 |" in summary and "Welch" in summary
    assert all((out / name).stat().st_size > 1000 for name in ("metrics.png", "curves.png"))
    assert len(rows_of(out / "summary.csv")) == 4

    # Finished runs are skipped; a run whose row is missing (killed after its last
    # checkpoint) continues from its checkpoint rather than starting over.
    capsys.readouterr()
    (out / "runs" / "r1-seed0" / "kept.txt").write_text("not overwritten")
    with open(out / "runs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["setting"] != "r1")
    assert ablate(out) == 0
    assert "4 runs, 3 finished already, 1 to go" in capsys.readouterr().err
    assert (out / "runs" / "r1-seed0" / "kept.txt").is_file()
    assert len(rows_of(out / "runs.csv")) == 4


def test_wandb_sweep_writes_the_design_and_runs_nothing(tmp_path):
    out = tmp_path / "sweep"
    assert ablate(out, "--wandb-sweep") == 0
    sweep = yaml.safe_load((out / "sweep.yaml").read_text())
    assert sweep["method"] == "grid"
    assert sweep["parameters"]["setting"]["values"] == [
        "base", "r1", "label_smoothing", "r1+label_smoothing"
    ]  # fmt: skip
    assert sweep["parameters"]["seed"]["values"] == [0]
    assert sweep["command"][:2] == ["gan-tricks", "ablate"] and sweep["command"][-1] == "${args}"
    assert "--wandb-sweep" not in sweep["command"]
    assert not (out / "runs").exists()


def test_an_unknown_setting_for_an_agent_is_one_sentence(tmp_path, capsys):
    assert ablate(tmp_path / "a", "--setting", "r2", "--seed", "0") == 2
    assert "--setting 'r2' is not in this design" in capsys.readouterr().err


def test_fid_and_mode_count_agreement_is_a_rank_correlation():
    rows = [{"setting": "s", "fid": f, "modes_covered": m} for f, m in
            [(10.0, 990), (20.0, 950), (30.0, 900), (40.0, 850)]]  # fmt: skip
    assert "-1.000" in fid_mode_agreement(rows)
    assert fid_mode_agreement([{"setting": "s", "modes_covered": 3}] * 4) is None
