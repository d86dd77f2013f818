"""The package's layering: the core imports no Lightning; the adapter uses Lightning's public
API only."""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import torch

PACKAGE = Path(__file__).resolve().parents[2] / "gan_tricks"
LIGHTNING_PREFIXES = ("pytorch_lightning", "lightning", "lightning_fabric")
CORE = (
    "gan_tricks.functional",
    "gan_tricks.layers",
    "gan_tricks.models",
    "gan_tricks.engine",
    "gan_tricks.tricks",
    "gan_tricks.monitors",
)


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_without_lightning(module):
    code = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {LIGHTNING_PREFIXES!r})\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout.strip().split(",")
    assert loaded == [""], f"{module} imports {len(loaded)} Lightning modules: {loaded[:3]}..."


@cache
def lightning_private_names() -> frozenset[str]:
    """Every single-underscore attribute of the Lightning objects the package touches, read
    off live instances (attributes set in ``__init__`` are not on the classes)."""
    import pytorch_lightning as pl
    from lightning_fabric.plugins import TorchCheckpointIO
    from pytorch_lightning.callbacks import Checkpoint, ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
    from pytorch_lightning.core.optimizer import LightningOptimizer
    from pytorch_lightning.loggers import CSVLogger, WandbLogger
    from pytorch_lightning.plugins.precision import Precision
    from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy, Strategy

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    objects = [
        trainer,
        trainer.strategy,
        pl.LightningModule(),
        pl.LightningDataModule(),
        pl.Callback(),
        ModelCheckpoint(),
        TQDMProgressBar(),
        LightningOptimizer(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)),
        CSVLogger("."),
        Precision(),
        TorchCheckpointIO(),
        pl.Trainer,
        LightningCLI,
        LightningArgumentParser,
        Checkpoint,
        WandbLogger,
        Strategy,
        DDPStrategy,
        SingleDeviceStrategy,
    ]
    return frozenset(
        name
        for obj in objects
        for name in dir(obj)
        if name.startswith("_") and not name.startswith("__")
    )


def private_lightning_uses(source: str) -> list[tuple[int, str]]:
    """(line, name) of every attribute access or import in ``source`` that reaches into
    Lightning's private API. ``self._name`` inside a class of our own (not derived from a
    Lightning class) is the class's own attribute, not Lightning's."""
    names = lightning_private_names()
    tree = ast.parse(source)
    lightning_names = _names_imported_from_lightning(tree)
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, own_class: bool) -> None:
        if isinstance(node, ast.ClassDef):
            own_class = not any(_root_name(base) in lightning_names for base in node.bases)
        if isinstance(node, ast.Attribute) and node.attr in names:
            is_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if not (is_self and own_class):
                found.append((node.lineno, node.attr))
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] in LIGHTNING_PREFIXES:
                if any(p.startswith("_") for p in parts):
                    found.append((node.lineno, node.module))
                found.extend((node.lineno, a.name) for a in node.names if a.name.startswith("_"))
        for child in ast.iter_child_nodes(node):
            visit(child, own_class)

    visit(tree, own_class=False)
    return found


def _names_imported_from_lightning(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIGHTNING_PREFIXES:
                    names.add(alias.asname or alias.name.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in LIGHTNING_PREFIXES
        ):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def test_the_checker_finds_private_lightning_uses():
    source = (
        "import pytorch_lightning as pl\n"
        "class Mine:\n"
        "    def f(self):\n"
        "        return self._optimizer\n"
        "class Adapter(pl.LightningModule):\n"
        "    def f(self):\n"
        "        return self._trainer\n"
        "connector = module._trainer._logger_connector.should_update_logs\n"
        "optimizer._on_before_step()\n"
        "from pytorch_lightning.loops._manual import X\n"
        "public = trainer.global_step + module._my_own_counter\n"
    )
    names = [name for _, name in private_lightning_uses(source)]
    assert "_logger_connector" in names and "_trainer" in names
    assert "_on_before_step" in names
    assert "pytorch_lightning.loops._manual" in names
    assert "_my_own_counter" not in names
    assert names.count("_trainer") == 2  # the adapter's self._trainer is Lightning's
    assert "_optimizer" not in names  # Mine's own attribute


def test_the_package_uses_no_private_lightning_api():
    uses = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := private_lightning_uses(path.read_text()))
    }
    assert uses == {}


def test_the_package_uses_no_private_torch_function():
    # ``torch._foreach_norm`` and friends change without notice between releases.
    uses = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "torch"
                and node.attr.startswith("_")
            ):
                uses.append(f"{path.name}:{node.lineno} torch.{node.attr}")
    assert uses == []
