"""Fixtures shared across test folders."""

from pathlib import Path

import pytest

from gan_tricks.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _fit_with_a_winning_discriminator(root: Path, detector_args: str, *extra: str) -> Path:
    """`gan-tricks fit` of ring8 where D wins (G's rate 1e-9, D's 0.01) under
    DiscriminatorOverpowering with ``detector_args`` (YAML flow mapping); the run folder."""
    detector = root / "detector.yaml"
    detector.write_text(
        "model:\n  detectors:\n"
        "    - class_path: gan_tricks.monitors.DiscriminatorOverpowering\n"
        f"      init_args: {detector_args}\n"
    )
    args = ["fit", "--config", str(ROOT / "recipes" / "ring8.yaml"), "--config", str(detector)]
    args += ["--model.g_optimizer.init_args.lr", "1e-9", "--model.d_optimizer.init_args.lr", "0.01"]
    args += ["--name", "r", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.default_root_dir", str(root), *extra]
    assert main(args) == 0
    return root / "r"


@pytest.fixture(scope="session")
def fit_with_a_winning_discriminator():
    """The function above, for tests in any folder (and module-scoped fixtures)."""
    return _fit_with_a_winning_discriminator


@pytest.fixture(scope="session", autouse=True)
def digit_feature_cache(tmp_path_factory):
    """One cache of the trained digit feature network for the whole run, shared by the xdist
    workers (the pytest base folder's parent is common to them; writes are atomic), so it is
    trained at most once per worker rather than once per test, and never into ~/.cache."""
    import os

    folder = tmp_path_factory.getbasetemp().parent / "gan-tricks-cache"
    previous = os.environ.get("GAN_TRICKS_CACHE")
    os.environ["GAN_TRICKS_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("GAN_TRICKS_CACHE", None)
    else:
        os.environ["GAN_TRICKS_CACHE"] = previous
