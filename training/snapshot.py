"""Snapshots that make torchrun restarts correct.

One file, written by rank 0 only, atomically (temporary file, fsync, rename, fsync of the
directory), so a crash mid-write leaves the previous snapshot intact. It records where training
stands as (epoch, step): the next batch to train, so nothing is trained twice after a resume.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import torch

FORMAT = 1
REQUIRED_KEYS = ("format", "workload", "epoch", "step", "model", "optimizer", "rng")


class SnapshotError(RuntimeError):
    """A snapshot exists but cannot be used; never silently ignored."""


@dataclass
class Position:
    epoch: int = 0  # the epoch in progress (or the next one, when step == 0)
    step: int = 0  # batches of that epoch already trained


def save(path: str, state: dict[str, Any]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load(path: str, workload: str) -> dict[str, Any] | None:
    """Read and check a snapshot; None when there is none."""
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise SnapshotError(
            f"snapshot {path} is corrupt and cannot be read ({exc}); move it away to start over"
        ) from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise SnapshotError(
            f"snapshot {path} is not a torchswarm snapshot (keys missing); move it away to start over"
        )
    if state["format"] != FORMAT:
        raise SnapshotError(
            f"snapshot {path} has format {state['format']}, this trainer reads format {FORMAT}"
        )
    if state["workload"] != workload:
        raise SnapshotError(
            f"snapshot {path} was written by workload '{state['workload']}', this run is '{workload}'; "
            "use another snapshot directory"
        )
    return state
