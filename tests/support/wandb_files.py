"""Reading what an offline W&B run really wrote, without an account and without mocking."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# W&B's run files (``run-*.wandb``) are a LevelDB-style log: a 7-byte file header (``:W&B``,
# a magic number and a version), then 32 KiB blocks of chunks, each with a 7-byte header
# (CRC32C, payload length, kind: 1 whole, 2 first, 3 middle, 4 last) and a payload that is
# part of one serialized ``Record`` protobuf. wandb 0.19+ has no Python reader of its own.
_WANDB_BLOCK = 32 * 1024
_WANDB_CHUNK_HEADER = struct.Struct("<IHB")


def wandb_records(run_file: str | Path, kind: str | None = None) -> Iterator[Any]:
    """The records of a W&B run file (``wandb/offline-run-*/run-*.wandb``), in order.

    Each is a ``wandb.proto.wandb_internal_pb2.Record``; ``kind`` keeps only one type
    (``"history"``, ``"summary"``, ``"alert"``, ``"config"``, ...). This lets a test read
    what an offline run really wrote, without an account and without mocking the logger.
    """
    from wandb.proto import wandb_internal_pb2

    data = Path(run_file).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{run_file} is not a W&B run file.")
    position, pending = 7, b""
    while position + _WANDB_CHUNK_HEADER.size <= len(data):
        left_in_block = _WANDB_BLOCK - position % _WANDB_BLOCK
        if left_in_block < _WANDB_CHUNK_HEADER.size:  # the block's zero padding
            position += left_in_block
            continue
        _, length, chunk_kind = _WANDB_CHUNK_HEADER.unpack_from(data, position)
        start = position + _WANDB_CHUNK_HEADER.size
        payload, position = data[start : start + length], start + length
        if chunk_kind == 0:  # a zeroed tail: nothing more in this block
            position += left_in_block - _WANDB_CHUNK_HEADER.size - length
            continue
        pending = payload if chunk_kind in (1, 2) else pending + payload
        if chunk_kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            if kind is None or record.WhichOneof("record_type") == kind:
                yield record


def finished_wandb_records(
    run_file: str | Path, kind: str | None = None, timeout: float = 30.0
) -> list[Any]:
    """:func:`wandb_records` once the run's exit record is in the file.

    W&B's service process writes the file after the client has logged (and even after
    ``finish`` returns under load), so a read straight after a run can miss its last records
    (alerts among them). Raises ``TimeoutError`` if the exit record is not in after ``timeout``
    seconds.
    """
    deadline = time.monotonic() + timeout
    while not any(True for _ in wandb_records(run_file, "exit")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_file} has no exit record after {timeout} s.")
        time.sleep(0.1)
    return list(wandb_records(run_file, kind))
