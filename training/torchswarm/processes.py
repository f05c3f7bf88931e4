"""A process and everything it started, read from /proc.

torchrun starts each worker in a session of its own, so a signal to torchrun's process group does
not reach them: a round killed that way leaves its workers running, still holding their GPU and
their sockets (a worker stuck in its own code stays stuck for good). Signal the tree instead,
collected before the first kill, while the workers are still torchrun's children.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it, parents before their children."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: the parent's PID follows the last ")".
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop(0)
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def signal_all(pids: list[int], signum: int = signal.SIGKILL) -> None:
    """Send ``signum`` to each of ``pids`` that is still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
