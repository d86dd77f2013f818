"""The recipes and overlays that ship inside the package, found by name.

``gan-tricks fit --config ring8`` (or ``tricks/r1``, or ``recipes/ring8.yaml`` outside a
clone) reads ``gan_tricks/recipes/ring8.yaml``; ``gan-tricks recipes`` lists them all. This
module imports nothing heavy: the command's listing and help stay fast.
"""

from __future__ import annotations

import re
from pathlib import Path

RECIPES = Path(__file__).resolve().parent / "recipes"
OVERLAYS = RECIPES / "overlays"


def find_recipe(name: str) -> Path | None:
    """The packaged recipe or overlay ``name`` names, or None.

    ``name`` may be a recipe's name (``ring8``, ``tricks/r1``, ``overlays/monitors/all_detectors``),
    the same with ``.yaml``, or a repository path (``recipes/ring8.yaml``,
    ``benchmarks/overlays/grid25/r1.yaml``), so commands copied from the docs work anywhere.
    """
    relative = name.removesuffix(".yaml").removesuffix(".yml")
    for prefix in ("recipes/", "benchmarks/"):
        relative = relative.removeprefix(prefix)
    if relative.startswith("/") or ".." in Path(relative).parts:
        return None
    candidate = RECIPES / f"{relative}.yaml"
    return candidate if candidate.is_file() else None


def recipe_names() -> list[str]:
    """Every packaged recipe by the name ``--config`` takes, overlays last."""
    paths = sorted(RECIPES.rglob("*.yaml"), key=lambda p: (p.parent != RECIPES, str(p)))
    return [str(path.relative_to(RECIPES).with_suffix("")) for path in paths]


def summary(path: Path, width: int = 96) -> str:
    """The first sentence of a recipe's opening comment, cut to ``width`` characters."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or not text or text.startswith(("gan-tricks ", "python ")):
            break
        words.append(text)
    sentence = re.split(r"(?<!\bal)(?<!e\.g)(?<!i\.e)[.;] (?=[A-Z(])", " ".join(words))[0]
    sentence = sentence.rstrip(".:")
    if len(sentence) > width:
        sentence = sentence[: width - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return sentence or "(no description)"


def listing() -> str:
    """What ``gan-tricks recipes`` prints: one line per recipe, grouped by folder."""
    names = recipe_names()
    width = max(len(name) for name in names)
    lines = ["Packaged recipes (gan-tricks fit --config NAME), then overlays (a further --config):"]
    group = None
    for name in names:
        folder = name.rpartition("/")[0]
        if folder != group:
            lines.append(f"\n{folder or 'recipes'}/")
            group = folder
        lines.append(f"  {name:<{width}}  {summary(RECIPES / f'{name}.yaml')}")
    return "\n".join(lines)
