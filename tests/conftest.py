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
        "trainer:\n  callbacks:\n"
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
