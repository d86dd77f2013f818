"""make demo's driver, on short runs: the side-by-side picture, the report page, the paths."""

from PIL import Image

from gan_tricks.experiments import demo


def test_the_demo_draws_both_runs_side_by_side_and_reports_the_failing_one(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--steps", "40"]) == 0
    said = capsys.readouterr().out
    picture = tmp_path / "plain_vs_tricks.png"
    assert Image.open(picture).size[0] > 2 * Image.open(picture).size[1] * 0.8
    assert f"picture: {picture}" in said
    assert f"report:  {tmp_path / 'failing' / 'report.html'}" in said
    assert (tmp_path / "failing" / "report.html").is_file()
    assert "of samples on a mode" in said and "failing run:" in said
    for name in ("ring8_plain", "ring8_tricks"):
        assert (tmp_path / name / "evaluation.json").is_file()
