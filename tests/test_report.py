"""`gan-tricks report`: one self-contained HTML page of a real run, with its alarms."""

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

from gan_tricks.cli import main
from gan_tricks.monitors import read_alarms
from gan_tricks.report import _panels, detector_initials, read_metrics

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory, fit_with_a_winning_discriminator) -> Path:
    """A ring8 run whose D wins (G barely learns) under DiscriminatorOverpowering."""
    return fit_with_a_winning_discriminator(
        tmp_path_factory.mktemp("report"), "{window: 30, warmup: 0, cooldown: 60}",
        "--wandb", "off", "--trainer.max_steps", "160", "--trainer.log_every_n_steps", "10",
    )  # fmt: skip


def test_a_run_keeps_evenly_spaced_sample_snapshots(failing_run):
    pictures = sorted(p.name for p in (failing_run / "samples").glob("step_*.png"))
    assert pictures == [f"step_{step:07d}.png" for step in range(20, 160, 20)]


def test_report_embeds_signals_alarms_samples_and_config(failing_run, capsys):
    assert main(["report", str(failing_run)]) == 0
    assert "report.html" in capsys.readouterr().out
    page = (failing_run / "report.html").read_text()
    alarms = read_alarms(failing_run)
    assert len(alarms) >= 2  # the failure persists past the cooldown
    assert page.count("<tr class='error'>") == len(alarms)
    assert f"<td>{alarms[0].step:,}</td><td>DiscriminatorOverpowering</td>" in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 + 7 + 1  # the signals, seven snapshots, the end of the run
    assert "iteration 20" in page and "end of the run" in page
    assert "gan_tricks.monitors.DiscriminatorOverpowering" in page  # the config, escaped
    assert "Detectors on: DiscriminatorOverpowering." in page
    assert "<h2>Evaluation" in page and "gan-tricks evaluate" in page  # none measured in-run
    assert 'src="http' not in page and "<script" not in page  # self-contained
    assert Image.open(failing_run / "report.png").size[0] > 500


def test_metrics_are_read_per_column(failing_run):
    series = read_metrics(failing_run)
    steps = [step for step, _ in series["train/d_loss"]]
    assert steps == sorted(steps) and len(steps) >= 10
    assert "monitor/g_grad_max_layer" not in series  # only detectors that compute it log it


def test_a_folder_without_metrics_is_refused_in_one_sentence(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "has no metrics.csv" in capsys.readouterr().err


def test_alarm_lines_carry_the_detectors_initials():
    assert detector_initials("DiscriminatorOverpowering") == "DO"
    assert detector_initials("GeneratorFoolingWithGarbage") == "GFWG"
    assert detector_initials("custom") == "cu"


def test_the_quality_probes_measurements_get_panels_and_constants_do_not():
    series = {
        "train/d_loss": [(1, 0.7), (2, 0.6)],
        "quality/modes_covered": [(100, 3.0), (200, 8.0)],
        "quality/num_modes": [(100, 8.0), (200, 8.0)],
        "other/thing": [(1, 1.0), (2, 2.0)],
    }
    titles = [title for title, _ in _panels(series)]
    assert titles == ["losses", "quality: modes_covered"]


def test_importing_the_plotting_code_leaves_the_matplotlib_backend_alone():
    # A notebook's inline backend must survive `import gan_tricks.report`.
    code = (
        "import matplotlib; matplotlib.use('pdf'); "
        "import gan_tricks.report, gan_tricks.plotting; print(matplotlib.get_backend())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "pdf", result.stderr


def test_the_training_plot_draws_a_signal_that_only_some_rows_carry(tmp_path, monkeypatch):
    # Gradient norms are only taken on logging steps: the plot must still draw them.
    from gan_tricks import plotting

    drawn = {}
    original = plotting.figure_with_axes

    def keep_axes(*args, **kwargs):
        fig, axes = original(*args, **kwargs)
        drawn["axes"] = axes
        return fig, axes

    monkeypatch.setattr(plotting, "figure_with_axes", keep_axes)
    history = [{"step": float(s), "d_loss": 1.0, "g_loss": 0.5} for s in range(0, 100, 10)]
    for row in history[::5]:
        row["d_grad_norm"] = row["g_grad_norm"] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a legend with nothing in it
        plotting.plot_training(history, tmp_path / "training.png")
    losses, _, gradients = drawn["axes"]
    assert [len(line.get_xdata()) for line in losses.lines] == [10, 10]
    assert [list(line.get_xdata()) for line in gradients.lines] == [[0.0, 50.0]] * 2
    assert (tmp_path / "training.png").stat().st_size > 0


def test_an_image_grid_of_small_digits_is_scaled_up_in_whole_pixel_blocks(tmp_path):
    import torch

    from gan_tricks.plotting import MIN_GRID_WIDTH, save_image_grid

    samples = torch.rand(64, 1, 8, 8) * 2 - 1
    save_image_grid(samples, tmp_path / "grid.png")
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[0] >= MIN_GRID_WIDTH == 512 and grid.size[0] == grid.size[1]
    # 8 x 8 images of 8 px with 1 px padding: 73 px, scaled by a whole factor (8 here).
    assert grid.size[0] % 73 == 0


def test_the_report_shows_the_final_evaluation_and_says_when_no_detector_was_on(tmp_path):
    import json

    from gan_tricks.report import write_report

    (tmp_path / "metrics.csv").write_text("step,train/d_loss\n10,0.5\n20,0.4\n")
    (tmp_path / "config.yaml").write_text("model:\n  detectors: []\n")
    evaluation = {"modes_covered": 7, "high_quality": 0.91, "seed": 0, "data": "Toy2D"}
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation))
    page = write_report(tmp_path).read_text()
    assert "No detector was switched on" in page and "No alarm:" not in page
    assert "<h2>Evaluation (evaluation)</h2>" in page
    assert (
        "<td>modes_covered</td><td>7</td>" in page and "<td>high_quality</td><td>0.91</td>" in page
    )


def test_alarm_labels_close_together_merge_into_one():
    from gan_tricks.monitors import Alarm
    from gan_tricks.report import alarm_labels

    alarms = [
        Alarm(500, "ModeCollapse", "warning", "m"),
        Alarm(510, "DiscriminatorOverpowering", "error", "m"),
        Alarm(520, "ModeCollapse", "warning", "m"),
        Alarm(2000, "ModeCollapse", "warning", "m"),
    ]
    assert alarm_labels(alarms, span=3000) == [(500, "MC,DO", "error"), (2000, "MC", "warning")]
    # Far apart on a short axis: each keeps its own label.
    assert len(alarm_labels(alarms, span=100)) == 4


def test_two_dimensional_pictures_keep_the_datas_frame(tmp_path):
    import torch

    from gan_tricks.data import Toy2D
    from gan_tricks.plotting import plot_points

    modes = Toy2D("grid25").modes
    near = torch.randn(100, 2) * 0.1
    far = torch.cat([near, torch.full((5, 2), 50.0)])
    frames = []
    for name, samples in (("near", near), ("far", far)):
        figure = plot_points(samples, tmp_path / f"{name}.png", modes=modes)
        frames.append((figure.axes[0].get_xlim(), figure.axes[0].get_ylim(), figure))
    # The same frame whatever the samples, around the 5 x 5 grid of modes at -4 .. 4.
    assert frames[0][:2] == frames[1][:2] == ((-6.25, 6.25), (-6.25, 6.25))
    assert frames[1][2].axes[0].get_title() == "105 samples, 5 outside the frame"
