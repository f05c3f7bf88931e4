"""Snapshots that make torchrun restarts correct.

Each node's snapshots are written by that node's local rank 0 into its own directory, one file
per position (epoch, samples of its order trained), atomically (torchswarm.atomic), so a crash
mid-write leaves the previous snapshot intact; the newest ``keep`` are kept. A snapshot records
where training stands as (epoch, step) at its world size and batch size, and as the samples of
the epoch's order trained, which a round at another world size goes on from, so nothing is
trained twice after a resume. A newest
snapshot that cannot be read (torn by a filesystem that lost a write) is skipped, with a line
saying so, for the one before it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import torch

from torchswarm.atomic import write_atomically

FORMAT = 1
REQUIRED_KEYS = ("format", "workload", "epoch", "step", "model", "optimizer", "rng")


class SnapshotError(RuntimeError):
    """A snapshot exists but cannot be used; never silently ignored."""


class TornSnapshot(SnapshotError):
    """A snapshot file that cannot be read as one; an older one may serve."""


# snapshot-<epoch>-<samples>.pt: names sort as positions do.
NAME_RE = re.compile(r"^snapshot-(\d{6,})-(\d{8,})\.pt$")
# The one file of trainers before keep, read as the oldest snapshot.
LEGACY_NAME = "snapshot.pt"


@dataclass
class Position:
    epoch: int = 0  # the epoch in progress (or the next one, when step == 0)
    step: int = 0  # batches of that epoch already trained


def position_of(state: dict[str, Any]) -> tuple[int, int]:
    """Where a snapshot stands, comparable across world sizes: (epoch, samples of the epoch's
    order trained). Snapshots of trainers before ``samples`` count in steps."""
    return state["epoch"], state.get("samples", state["step"])


def path_for(directory: str, epoch: int, samples: int) -> str:
    return os.path.join(directory, f"snapshot-{epoch:06d}-{samples:08d}.pt")


def _positions(directory: str) -> list[tuple[tuple[int, int], str]]:
    """(position, path) of every snapshot in ``directory``, newest first; a legacy snapshot.pt
    last, at position (-1, -1)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    found = sorted(
        (((int(m[1]), int(m[2])), os.path.join(directory, n)) for n in names if (m := NAME_RE.match(n))),
        reverse=True,
    )
    if LEGACY_NAME in names:
        found.append(((-1, -1), os.path.join(directory, LEGACY_NAME)))
    return found


def candidates(directory: str) -> list[str]:
    """The snapshots in ``directory``, newest first."""
    return [path for _unused, path in _positions(directory)]


def save(directory: str, state: dict[str, Any], keep: int) -> str:
    """Write the snapshot of ``state``'s position and keep the newest ``keep``. Snapshots past
    this position are removed first: they belong to a run this one went back from (a resume
    from an older snapshot, when a newer one was torn)."""
    position = position_of(state)
    path = path_for(directory, *position)
    for at, old in _positions(directory):
        if at > position:
            os.unlink(old)
    write_atomically(path, lambda handle: torch.save(state, handle), prefix=".snapshot-")
    for old in candidates(directory)[keep:]:
        os.unlink(old)
    return path


def load_newest(directory: str, workload: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The newest snapshot in ``directory`` that can be read (None when there is none), and why
    each newer one could not. Raises SnapshotError when none can be read, or when the newest
    readable one is not this run's (another workload or format): that is never skipped."""
    skipped: list[str] = []
    for path in candidates(directory):
        try:
            return load(path, workload), skipped
        except TornSnapshot as exc:
            skipped.append(str(exc))
    if skipped:
        raise SnapshotError(
            "; ".join(skipped) + "; no snapshot before it to resume from: move them away to start over"
        )
    return None, []


def load(path: str, workload: str) -> dict[str, Any] | None:
    """Read and check a snapshot; None when there is none."""
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise TornSnapshot(f"snapshot {path} is corrupt and cannot be read ({exc})") from exc
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise TornSnapshot(f"snapshot {path} is not a torchswarm snapshot (keys missing)")
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
