"""Where the commands write, checked before any work: one sentence instead of a traceback
halfway through (a run name that is a path, a folder that is a file or cannot be written, an
output that is a directory), and files written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gan_tricks.errors import ConfigError

NAME_MAX = 255  # bytes in one folder name on the common file systems (ext4, APFS, NTFS)


def check_run_name(name: str) -> None:
    """A run folder name is one folder under the runs root: no separator, no ``..``."""
    separators = {os.sep, "/", *(os.altsep or "")}
    if not name.strip() or name in (".", "..") or any(sep in name for sep in separators):
        raise ConfigError(
            f"--name {name!r} must be one folder name (no path separator, not '.' or '..'); "
            "choose where runs go with --trainer.default_root_dir."
        )
    if len(name.encode()) > NAME_MAX:
        raise ConfigError(
            f"--name is {len(name.encode())} bytes long; a folder name holds at most "
            f"{NAME_MAX}: choose a shorter one."
        )


def check_writable_folder(folder: Path, what: str) -> None:
    """``folder`` (made if missing) can hold new files: its nearest existing ancestor is a
    folder we can create a file in. Tried with a real file: as root, ``os.access`` says yes
    to read-only mounts."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError(
            f"{what} {folder} cannot be made: {existing} is a file, not a folder; "
            "choose another path."
        )
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(
            f"{what} {folder} cannot be written ({error.strerror or error}); "
            "choose a folder you can write to."
        ) from None


def check_output_file(path: Path, suffixes: tuple[str, ...], option: str = "-o") -> None:
    """An output file a command can write: a known suffix, not a directory, in a folder that
    exists or can be made and can be written."""
    if path.suffix not in suffixes:
        raise ConfigError(f"{option} must end in {' or '.join(suffixes)} (got {path.name}).")
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give the path of a file in it.")
    check_writable_folder(path.parent, f"{option}'s folder")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(partial)`` then one rename onto ``path``: a failure leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
