"""What a resumed fit may change: the recipe is compared with the one the checkpoint ran.

A setting that only says how long to train, how to log or what a detector does when it fires
changes freely. Any other difference is refused in one sentence, because Lightning restores
the optimizers' own settings from the checkpoint (a new learning rate would be written in
``config.yaml`` and never reach the optimizer). ``--resume_changes true`` accepts them, and
then they are applied for real: :class:`AppliedChanges` writes new optimizer settings into
the restored optimizers (and their schedulers' base rates). What cannot be applied is always
refused: another seed (the run continues its own random streams), another data set, and
networks whose weights do not fit the checkpoint's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

from gan_tricks.errors import ConfigError

# Settings a resume changes freely: length, logging, where the run lives, what detectors do.
FREE_ON_RESUME = (
    r"trainer\.(max_steps|max_epochs|max_time|min_steps|log_every_n_steps|default_root_dir)",
    r"trainer\.(enable_progress_bar|enable_model_summary|logger|callbacks|profiler)(\W.*)?",
    r"trainer\.(accelerator|devices|num_nodes)",
    r"(checkpoint_every|wandb|name|overwrite|ckpt_path|config|resume_changes)(\W.*)?",
    r"model\.detectors\[\w+\]\.(action|rollback_every|rollback_keep)",
    r"data\.(init_args\.)?(num_workers|root|path|download)",
)
# Settings no flag can change: they are not settings of the future but of the past.
NEVER_ON_RESUME = {
    "seed_everything": "the run continues its own random streams",
    "data.class_path": "the run's checkpoint learned another data set",
}
SECTIONS = ("seed_everything", "model", "data", "trainer", "checkpoint_every")


def flat_settings(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(key, value)`` for every leaf of a resolved recipe, with readable keys: a list entry
    with a class (a trick, a detector) is named by its class (``model.tricks[LeCam].weight``),
    and ``init_args`` is left out of the name."""
    for key, value in config.items():
        name = prefix if key == "init_args" else (f"{prefix}.{key}" if prefix else key)
        if isinstance(value, Mapping):
            yield from flat_settings(value, name)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            seen: dict[str, int] = {}
            for entry in value:
                label = str(entry.get("class_path", "item")).rsplit(".", 1)[-1]
                seen[label] = seen.get(label, 0) + 1
                label = label if seen[label] == 1 else f"{label}_{seen[label]}"
                yield from flat_settings(entry, f"{name}[{label}]")
        else:
            yield name, value


def setting_changes(stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list]:
    """``{key: [old, new]}`` for every setting that differs between the checkpoint's recipe
    (``stored``) and the new one, within the sections the checkpoint recorded."""
    sections = [section for section in SECTIONS if section in stored]
    old = dict(flat_settings({s: stored[s] for s in sections}))
    fresh = dict(flat_settings({s: new.get(s) for s in sections}))
    return {
        key: [old.get(key), fresh.get(key)]
        for key in sorted(old.keys() | fresh.keys())
        if old.get(key) != fresh.get(key)
    }


def is_free(key: str) -> bool:
    return any(re.fullmatch(pattern, key) for pattern in FREE_ON_RESUME)


def check_changes(changes: Mapping[str, list], accepted: bool) -> None:
    """Refuse, in one sentence, the changes a resume may not make (all but the free ones,
    unless ``accepted``; those no flag allows, always)."""
    never = {key: why for key, why in NEVER_ON_RESUME.items() if key in changes}
    if never:
        key, why = next(iter(never.items()))
        raise ConfigError(
            f"--ckpt_path: {key} cannot change on resume ({_show(changes[key])}): {why}; "
            "start a new run for it."
        )
    refused = {key: pair for key, pair in changes.items() if not is_free(key)}
    if refused and not accepted:
        listed = ", ".join(f"{key} ({_show(pair)})" for key, pair in refused.items())
        raise ConfigError(
            f"--ckpt_path: the recipe differs from the one the checkpoint ran in {listed}; "
            "resume with the run's own settings (its config.yaml), or pass "
            "--resume_changes true to apply the change."
        )


def _show(pair: list) -> str:
    old, new = pair
    return f"{old!r} -> {new!r}"


def check_weights_fit(saved: Mapping[str, Tensor], module: pl.LightningModule) -> None:
    """One sentence when the recipe's networks cannot hold the checkpoint's weights (another
    width, another architecture, a trick that adds or removes a network)."""
    own = module.state_dict()
    missing = sorted(own.keys() - saved.keys())
    unexpected = sorted(saved.keys() - own.keys())
    reshaped = sorted(
        key for key in own.keys() & saved.keys() if tuple(own[key].shape) != tuple(saved[key].shape)
    )
    if not (missing or unexpected or reshaped):
        return
    if reshaped:
        key = reshaped[0]
        detail = (
            f"{key} is {tuple(saved[key].shape)} in the checkpoint and "
            f"{tuple(own[key].shape)} in the recipe"
        )
    elif missing:
        detail = f"the checkpoint has no {missing[0]}"
    else:
        detail = f"the recipe's networks have no {unexpected[0]}"
    count = len(missing) + len(unexpected) + len(reshaped)
    raise ConfigError(
        f"--ckpt_path: the checkpoint's weights do not fit the recipe's networks ({detail}; "
        f"{count} tensor(s) differ); resume with the networks the run was trained with."
    )


OPTIMIZERS = {"g_optimizer": 0, "d_optimizer": 1}


class AppliedChanges(pl.Callback):
    """Writes the accepted new optimizer settings (``model.g_optimizer.lr``, Adam's
    ``betas``...) into the optimizers Lightning restored from the checkpoint, when training
    starts. A new learning rate also becomes its scheduler's base rate, keeping the
    scheduler's current factor."""

    def __init__(self, changes: Mapping[str, list]) -> None:
        self.changes = dict(changes)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        optimizers = trainer.optimizers
        for key, (_, new) in self.changes.items():
            found = re.fullmatch(r"model\.(g_optimizer|d_optimizer)\.(\w+)", key)
            if found is None or found.group(2) == "class_path":
                continue
            optimizer = optimizers[OPTIMIZERS[found.group(1)]]
            setting = found.group(2)
            value = tuple(new) if isinstance(new, list) else new
            for index, group in enumerate(optimizer.param_groups):
                if setting == "lr":
                    _set_rate(trainer, optimizer, index, group, float(value))
                else:
                    group[setting] = value


def _set_rate(trainer: pl.Trainer, optimizer: Any, index: int, group: dict, rate: float) -> None:
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if getattr(scheduler, "optimizer", None) is optimizer and hasattr(scheduler, "base_lrs"):
            factor = group["lr"] / scheduler.base_lrs[index]
            scheduler.base_lrs[index] = rate
            group["initial_lr"] = rate
            group["lr"] = rate * factor
            return
    group["lr"] = rate
