"""The global random number generators as plain data (weights-only loadable), and back.

Tricks draw from the global generators (label noise, instance noise, DiffAugment), so a
resumed run repeats the uninterrupted one only if they are restored too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def random_states() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU and (when in use) CUDA generator states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_states(state: dict[str, Any]) -> None:
    """Restore what :func:`random_states` returned."""
    random.setstate(_as_python_state(state["python"]))
    np.random.set_state(_as_numpy_state(state["numpy"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> dict[str, Any]:
    # As plain types and a tensor, so that weights_only loading accepts it.
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "kind": kind,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "position": int(position),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def _as_numpy_state(state: dict[str, Any]) -> tuple:
    keys = state["keys"].numpy().astype(np.uint32)
    return (state["kind"], keys, state["position"], state["has_gauss"], state["cached_gaussian"])


def _as_python_state(state: Any) -> tuple:
    # (version, tuple of 625 ints, gauss_next); a checkpoint may give the tuple back as a list.
    version, internal, gauss = state
    return version, tuple(internal), gauss
