"""The tutorials in notebooks/ run top to bottom (on reduced settings) and draw their pictures.

Each notebook reads ``NOTEBOOK_STEPS`` for its training lengths; the committed notebooks hold
the outputs of a full-length run.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_three_tutorials():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("NOTEBOOK_STEPS", "60")
    monkeypatch.setenv("GAN_TRICKS_ROOT", str(ROOT))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        cell.outputs = [] if cell.cell_type == "code" else None

    # Raises CellExecutionError, with the cell and its traceback, if any cell fails.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()

    pictures = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert pictures, "the notebook drew no picture"
