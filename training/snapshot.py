"""Snapshots that make torchrun restarts correct.

One file per node, written by that node's local rank 0, atomically (torchswarm.atomic), so a
crash mid-write leaves the previous snapshot intact. It records where training
stands as (epoch, step): the next batch to train, so nothing is trained twice after a resume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from torchswarm.atomic import write_atomically

FORMAT = 1
REQUIRED_KEYS = ("format", "workload", "epoch", "step", "model", "optimizer", "rng")


class SnapshotError(RuntimeError):
    """A snapshot exists but cannot be used; never silently ignored."""


@dataclass
class Position:
    epoch: int = 0  # the epoch in progress (or the next one, when step == 0)
    step: int = 0  # batches of that epoch already trained


def save(path: str, state: dict[str, Any]) -> None:
    write_atomically(path, lambda handle: torch.save(state, handle), prefix=".snapshot-")


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
