"""The stall watchdog: a round whose ranks on this node stopped stepping (stuck in a collective, a
DataLoader worker deadlocked, a filesystem that stopped answering) while their processes and host
look healthy is ended and re-formed from the newest snapshot, as after a lost host.

Each rank's ``torchswarm.step()`` touches TORCHSWARM_STEPPED_FILE at most once a second (the
launcher empties it at each round's start). The watchdog acts only once this node has seen a
step in this generation (a marker in the snapshot volume): a script that never reports a step is
never judged. A round's first step may take twice the timeout (a snapshot to load, NCCL to set
up). TORCHSWARM_STALL_TIMEOUT (seconds; 0: off) and TORCHSWARM_STALL_RESTARTS (how many stalls
in a row are re-formed before the job fails) come from the stack. Stalls in a row are counted
job-wide in the rendezvous store of an elastic job (whichever node sees one first ends the
round), in the node's snapshot volume otherwise; a round that has stepped for as long as the
timeout clears the count (one that stalls again a few steps after each resume does not).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping

from torchswarm import record, stacks

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RESTARTS = 3


class Watchdog:
    def __init__(
        self,
        env: Mapping[str, str],
        count: Callable[[], int] | None = None,
        clear: Callable[[], object] | None = None,
    ) -> None:
        self.timeout = float(env.get("TORCHSWARM_STALL_TIMEOUT", DEFAULT_TIMEOUT_S))
        self.restarts = int(env.get("TORCHSWARM_STALL_RESTARTS", DEFAULT_RESTARTS))
        self.path = env.get("TORCHSWARM_STEPPED_FILE", "")
        self.pids = env.get("TORCHSWARM_PIDS_FILE", "")
        self.stacks_prefix = env.get("TORCHSWARM_STACKS_FILE", "")
        self.generation = env.get("TORCHSWARM_GENERATION", "")
        self.snapshot_dir = env.get("TORCHSWARM_SNAPSHOT_DIR", "")
        self.marked = bool(self.generation and self.snapshot_dir)
        self.armed = self.marked and record.has_stepped(self.snapshot_dir, self.generation)
        self.first_step_at: float | None = None  # this round's (the steps file's time when first seen)
        self.cleared = False
        self._count = count or self._count_here
        self._clear = clear or self._clear_here
        self.stalls = 0  # in a row, as of this node's last stall

    def _count_here(self) -> int:
        """In the snapshot volume, across the swarm's restarts of this node's task."""
        if not self.marked:
            return self.stalls + 1
        return record.count(self.snapshot_dir, self.generation, record.STALLS)

    def _clear_here(self) -> None:
        if self.marked:
            record.clear_count(self.snapshot_dir, self.generation, record.STALLS)

    def new_round(self) -> None:
        self.first_step_at, self.cleared = None, False

    def silent_for(self, round_began: float, now: float | None = None) -> float | None:
        """Seconds since this node's last step (or the round's start) when past the timeout,
        else None. ``round_began`` and ``now`` are wall-clock times (the file's is one)."""
        now = time.time() if now is None else now
        if self.timeout <= 0:
            return None
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        if stat.st_size:  # a rank stepped in this round: the watchdog is on
            if self.first_step_at is None:
                self.first_step_at = stat.st_mtime
                if self.marked:
                    record.mark_stepped(self.snapshot_dir, self.generation)
            elif not self.cleared and stat.st_mtime - self.first_step_at >= self.timeout:
                # Stepped for this long (by the steps' own times, not by when they were seen: a
                # round that stalls a few steps in has not): the stalls in a row are over.
                self._clear()
                self.cleared = True
            self.armed = True
            silent, allowed = now - stat.st_mtime, self.timeout
        else:
            silent, allowed = now - round_began, 2 * self.timeout
        return silent if self.armed and silent > allowed else None

    def dump_stacks(self) -> None:
        """SIGUSR1 to this node's workers: each writes every thread's Python stack to its stacks
        file (faulthandler, set up by torchswarm.worker), for stacks() to read."""
        with contextlib.suppress(OSError), open(self.pids, encoding="utf-8") as handle:
            for pid in filter(None, (line.strip() for line in handle)):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGUSR1)

    def stacks(self) -> dict[int, str]:
        """What dump_stacks had each worker write, by rank."""
        found = {}
        for rank, path in stacks.files(self.stacks_prefix).items():
            with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
                found[rank] = handle.read()
        return {rank: dump for rank, dump in found.items() if dump.strip()}

    def count_stall(self) -> int:
        """One more stall in a row; how many so far."""
        self.stalls = self._count()
        return self.stalls

    @property
    def given_up(self) -> bool:
        """Whether the last stall is one more than the job may re-form."""
        return self.stalls > self.restarts
