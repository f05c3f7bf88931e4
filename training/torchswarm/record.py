"""The job's completion record: one small JSON file per deployment generation, in the snapshot
volume of every node whose ranks saw training finish.

A generation is the stack's hash (TORCHSWARM_GENERATION): a redeploy with anything changed is a
new generation, and its record is not the old one's. A rank that the swarm restarts after its
generation finished finds the record and exits 0 at once instead of waiting for peers that are
gone. Written atomically (temporary file, fsync, rename), so a record is whole or absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from torchswarm.atomic import write_atomically

RECORD_DIR = ".torchswarm"  # inside the snapshot directory
GENERATION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def record_dir(snapshot_dir: str) -> str:
    return os.path.join(snapshot_dir, RECORD_DIR)


def _path(snapshot_dir: str, kind: str, generation: str) -> str:
    if not GENERATION_RE.match(generation):
        raise ValueError(f"TORCHSWARM_GENERATION '{generation}' is not a stack hash")
    return os.path.join(record_dir(snapshot_dir), f"{kind}-{generation}.json")


def complete_path(snapshot_dir: str, generation: str) -> str:
    return _path(snapshot_dir, "complete", generation)


def read_complete(snapshot_dir: str, generation: str) -> dict[str, Any] | None:
    """The record of this generation's completion, or None when it has not completed here."""
    try:
        with open(complete_path(snapshot_dir, generation), encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # cannot happen with an atomic write; never trust half a record
    return record if isinstance(record, dict) and record.get("generation") == generation else None


def write_complete(snapshot_dir: str, generation: str, details: Mapping[str, Any]) -> str:
    path = complete_path(snapshot_dir, generation)
    text = json.dumps({"generation": generation, **details}, sort_keys=True)
    write_atomically(path, lambda handle: handle.write(text.encode()), prefix=".complete-")
    return path


def trained_path(snapshot_dir: str, generation: str) -> str:
    """A marker: this node has trained in this generation (its rounds re-form, not start)."""
    return _path(snapshot_dir, "trained", generation)


def _mark(snapshot_dir: str, generation: str, kind: str) -> None:
    path = _path(snapshot_dir, kind, generation)
    if not os.path.exists(path):
        write_atomically(path, lambda handle: handle.write(b"1"), prefix=f".{kind}-")


def mark_trained(snapshot_dir: str, generation: str) -> None:
    _mark(snapshot_dir, generation, "trained")


def has_trained(snapshot_dir: str, generation: str) -> bool:
    return os.path.exists(trained_path(snapshot_dir, generation))


def has_stepped(snapshot_dir: str, generation: str) -> bool:
    """Whether a rank of this node trained a step in this generation (the watchdog's to judge)."""
    return os.path.exists(_path(snapshot_dir, "stepped", generation))


def mark_stepped(snapshot_dir: str, generation: str) -> None:
    _mark(snapshot_dir, generation, "stepped")


# Counts of what happened in a row on this node, kept across the swarm's restarts of its task:
# failed starts (the script failed before its first step) and stalls (no step for too long).
FAILED_STARTS, STALLS = "failed-starts", "stalls"


def count(snapshot_dir: str, generation: str, kind: str) -> int:
    """One more of ``kind`` in a row; the count so far."""
    path = _path(snapshot_dir, kind, generation)
    try:
        with open(path, encoding="utf-8") as handle:
            so_far = int(handle.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        so_far = 0
    so_far += 1
    write_atomically(path, lambda handle: handle.write(str(so_far).encode()), prefix=f".{kind}-")
    return so_far


def clear_count(snapshot_dir: str, generation: str, kind: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(_path(snapshot_dir, kind, generation))
