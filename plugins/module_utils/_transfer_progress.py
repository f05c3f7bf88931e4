"""How far a transfer has got, for the controller to show while it runs.

The sending end (image_relay, data_relay) records its bytes to a small JSON file on its own
host at most once a second; the controller (action relay_wait) reads that file while it waits
for the transfer's async job and prints one line from it. A module's output comes only when it
ends, so this file is the only way to see a long transfer move.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable

from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically


class Recorder:
    """Called with the bytes sent so far; writes ``path`` when ``every`` seconds have passed
    since the last write, and at once when the call says it was the ``last`` byte (the other
    end then answers), atomically, so a reader never sees half a file."""

    def __init__(
        self,
        path: str,
        total: int | None = None,
        every: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path, self.total, self.every, self.clock = path, total, every, clock
        self.started = clock()
        self.written_at: float | None = None
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.write(0)

    def __call__(self, done: int, last: bool = False) -> None:
        if last or self.written_at is None or self.clock() - self.written_at >= self.every:
            self.write(done, finished=last)

    def write(self, done: int, finished: bool = False) -> None:
        now = self.clock()
        record = {
            "bytes": done,
            "total": self.total,
            "seconds": round(now - self.started, 1),
            "finished": finished,
        }
        write_atomically(self.path, json.dumps(record), sync=False)  # once a second: no fsync
        self.written_at = now

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


@contextlib.contextmanager
def recording(path: str | None, total: int | None = None):
    """A Recorder at ``path`` for the length of a transfer, removed after it (the transfer's
    result is the module's to report); None when no path was given."""
    if not path:
        yield None
        return
    recorder = Recorder(path, total)
    try:
        yield recorder
    finally:
        recorder.remove()


def parse(text: str) -> dict | None:
    """A record as the controller read it; None for anything that is not one (not yet written)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("bytes"), int) else None


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def line(what: str, record: dict | None, waited: float) -> str:
    """One progress line: ``what`` (for example "image to node1"), how much has gone, of how
    much, at what rate; or that nothing has been recorded yet after ``waited`` seconds."""
    if not record:
        return f"{what}: nothing sent yet after {waited:.0f} s"
    done, total, seconds = record["bytes"], record.get("total"), record.get("seconds") or 0
    of = f" of {size(total)} ({100 * done / total:.0f}%)" if total else ""
    rate = f", {size(done / seconds)}/s" if seconds > 0 and done else ""
    if record.get("finished"):
        return f"{what}: all {size(done)} sent in {seconds:.0f} s{rate}; waiting for the answer"
    return f"{what}: {size(done)}{of} in {seconds:.0f} s{rate}"
