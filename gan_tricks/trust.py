"""What a stored config may make gan-tricks import, and how much YAML it may expand to.

A checkpoint loads with ``weights_only`` (no pickled code runs), but the config it carries names
classes that jsonargparse imports to rebuild the run, and importing a module runs it. So every
loader of a stored config (``sample``, ``evaluate``, ``export``, ``report``, a resume) first
checks each class it names against an allow-list: the package's own classes and torch's
optimizers and schedulers, plus what the user allows explicitly (``--allow-class NAME`` on the
command, or ``GAN_TRICKS_ALLOW_CLASSES=mypkg,other.Module``; a name allows itself and
everything under it).

YAML aliases let 1 KB of text stand for billions of values (the "billion laughs"): a recipe or
a stored ``config.yaml`` is refused in one sentence when it is larger than
:data:`MAX_YAML_BYTES` or expands to more than :data:`MAX_YAML_NODES` values.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from gan_tricks.errors import ConfigError

TRUSTED = ("gan_tricks", "torch.optim")
ALLOW_VARIABLE = "GAN_TRICKS_ALLOW_CLASSES"
MAX_YAML_BYTES = 1_000_000
MAX_YAML_NODES = 100_000
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def allowed_names(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The trusted packages, the names in ``GAN_TRICKS_ALLOW_CLASSES`` and ``extra``."""
    from_environment = os.environ.get(ALLOW_VARIABLE, "")
    named = [name.strip() for name in from_environment.split(",") if name.strip()]
    return (*TRUSTED, *named, *(name.strip() for name in extra if name.strip()))


def is_allowed(name: str, allowed: Iterable[str]) -> bool:
    return any(name == entry or name.startswith(entry.rstrip(".") + ".") for entry in allowed)


def imported_names(config: Any) -> Iterator[str]:
    """Every name in ``config`` that rebuilding it would import: each ``class_path`` (and
    Lightning's ``_class_path``) with a module part, and each other dotted string whose first
    part is an importable module (jsonargparse imports such strings for callable settings)."""
    if isinstance(config, dict):
        for key, value in config.items():
            if key in ("class_path", "_class_path") and isinstance(value, str):
                if "." in value:
                    yield value
            else:
                yield from imported_names(value)
    elif isinstance(config, list | tuple):
        for value in config:
            yield from imported_names(value)
    elif isinstance(config, str) and _DOTTED.fullmatch(config) and _importable(config):
        yield config


def _importable(name: str) -> bool:
    try:  # finds the top-level module without importing (running) it
        return importlib.util.find_spec(name.split(".", 1)[0]) is not None
    except (ImportError, ValueError):
        return False


def check_allowed_classes(config: Any, source: str, extra: Iterable[str] = ()) -> None:
    """Refuse, in one sentence, a stored config that names a class outside the allow-list."""
    allowed = allowed_names(extra)
    for name in imported_names(config):
        if not is_allowed(name, allowed):
            raise ConfigError(
                f"{source} names {name!r}, which is not one of gan-tricks' own classes, so it "
                f"is not imported; if you trust it, allow it with --allow-class {name} (or "
                f"{ALLOW_VARIABLE}={name})."
            )


def safe_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` bounded in size and in alias expansion; one sentence otherwise."""
    if len(text.encode("utf-8", errors="replace")) > MAX_YAML_BYTES:
        raise ConfigError(
            f"{source} is larger than {MAX_YAML_BYTES // 1_000_000} MB; a recipe is a few "
            "hundred lines of settings."
        )
    try:
        if "*" in text:  # aliases: count what they expand to before building it
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            if node is not None and _expanded_size(node) > MAX_YAML_NODES:
                raise ConfigError(
                    f"{source} expands to more than {MAX_YAML_NODES:,} values through YAML "
                    "aliases (&name / *name); write the settings out instead."
                )
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(
            f"{source} nests its values too deeply to read; a recipe is a few levels deep."
        ) from None


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` stands for once every alias is written out (a shared node
    counted once per use), without building them: each node's size is computed once, and a
    node that contains itself counts as too many."""
    sizes: dict[int, int] = {}
    too_many = MAX_YAML_NODES + 1

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known if known >= 0 else too_many  # -1: still being counted, a cycle
        sizes[id(node)] = -1
        total = 1
        for child in _children(node):
            total = min(total + size(child), too_many)
        sizes[id(node)] = total
        return total

    return size(root)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
