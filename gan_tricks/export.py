"""Exported generators: G's weights in safetensors with the config that rebuilds it.

A user who only samples needs neither D, nor the optimizers, nor a pickle: a ``.safetensors``
file holds tensors and a JSON header, and loading it runs no code from the file (a ``.ckpt``
loaded without ``weights_only`` can). The header keeps G's ``class_path`` / ``init_args`` and
the latent spec, so :func:`load_generator` rebuilds the network; only the package's classes
(and those the user allows, :mod:`gan_tricks.trust`) are rebuilt from a file, any other G is
allowed explicitly or passed in by the caller.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from gan_tricks.errors import ConfigError
from gan_tricks.functional.latent import Latent
from gan_tricks.paths import write_atomically
from gan_tricks.trust import check_allowed_classes

FORMAT = "gan-tricks generator 1"


def export_generator(module, path: str | Path, generator_config: dict[str, Any]) -> Path:
    """Write the network samples come from (G's moving average when there is one) to
    ``path``, with ``generator_config`` (``class_path`` / ``init_args``) and the latent spec.

    Parametrizations (spectral norm on G) are folded into plain weights first, so the file
    loads into the bare network class.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ConfigError(f"-o must end in .safetensors (got {path.name}).")
    tensors = plain_state_dict(module.sampling_generator)
    metadata = {
        "format": FORMAT,
        "generator": json.dumps(generator_config),
        "latent": json.dumps(dataclasses.asdict(module.latent)),
    }
    write_atomically(path, lambda partial: save_file(tensors, str(partial), metadata=metadata))
    return path


def load_generator(
    path: str | Path, generator: nn.Module | None = None, allow: Iterable[str] = ()
) -> tuple[nn.Module, Latent]:
    """G (eval mode, weights loaded) and its latent spec from a file of :func:`export_generator`.

    ``generator``: a network to load the weights into, instead of building the class the
    header names. Only the package's own classes are built, plus those in ``allow`` and
    ``GAN_TRICKS_ALLOW_CLASSES`` (:mod:`gan_tricks.trust`): the file runs no code, and must
    not make us import what it names either. A missing, corrupt or foreign file raises
    ``ConfigError`` with one sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; give a .safetensors file of gan-tricks export.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(
            f"{path} is not a readable safetensors file ({type(error).__name__}); "
            "give a file written by gan-tricks export."
        ) from None
    if metadata.get("format") != FORMAT:
        raise ConfigError(
            f"{path} holds tensors but no gan-tricks generator header; "
            "give a file written by gan-tricks export."
        )
    try:
        latent = Latent(**json.loads(metadata["latent"]))
        if generator is None:
            generator = _build(json.loads(metadata["generator"]), path, allow)
        generator.load_state_dict(tensors)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, ImportError) as error:
        raise ConfigError(
            f"{path}'s gan-tricks header does not rebuild its generator ({_header_fault(error)}); "
            "export the checkpoint again with gan-tricks export."
        ) from None
    return generator.eval(), latent


def _header_fault(error: BaseException) -> str:
    """What is wrong with a hand-edited header, in a few words."""
    if isinstance(error, json.JSONDecodeError):
        return f"its JSON is broken at character {error.pos}"
    if isinstance(error, KeyError):
        return f"it has no {error.args[0]!r} entry"
    if isinstance(error, RuntimeError) and "state_dict" in str(error):
        mismatch = [line.strip() for line in str(error).splitlines() if "size mismatch" in line]
        detail = mismatch[0][:160] if mismatch else str(error).splitlines()[0][:160]
        return f"the weights do not fit the network it describes: {detail}"
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"


def _build(config: dict[str, Any], path: Path, allow: Iterable[str]) -> nn.Module:
    class_path = str(config.get("class_path", ""))
    if "." not in class_path:
        raise ConfigError(f"{path} names no generator class (class_path {class_path!r}).")
    check_allowed_classes(config, str(path), allow)
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"{path} names {class_path!r}, which is not a network class.")
    return cls(**(config.get("init_args") or {}))


@torch.no_grad()
def plain_state_dict(network: nn.Module) -> dict[str, torch.Tensor]:
    """``network``'s state dict with every parametrization (spectral norm) folded into the
    plain tensor it computes, as the bare class names it; ``network`` is left unchanged.

    Read in eval mode, so that spectral norm uses its stored vectors (as sampling does) rather
    than running one more power iteration.
    """
    was_training = network.training
    network.eval()
    try:
        state = {
            name: value
            for name, value in network.state_dict().items()
            if ".parametrizations." not in name
        }
        for prefix, layer in network.named_modules():
            for name in getattr(layer, "parametrizations", None) or {}:
                state[f"{prefix}.{name}" if prefix else name] = getattr(layer, name).detach()
    finally:
        network.train(was_training)
    return {name: value.detach().cpu().contiguous() for name, value in state.items()}


@torch.no_grad()
def sample_exported(
    generator: nn.Module, latent: Latent, n: int, seed: int = 0, batch_size: int = 1024
) -> torch.Tensor:
    """``n`` samples of an exported G, with latent codes from ``seed`` (as ``gan-tricks
    sample`` draws them from a checkpoint)."""
    rng = torch.Generator().manual_seed(seed)
    chunks = [
        generator(latent.sample(min(batch_size, n - start), generator=rng))
        for start in range(0, n, batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.empty(0)
