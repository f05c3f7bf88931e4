"""Files written whole or not at all: the data goes to a temporary file beside the target, which
is then renamed over it, so that a reader (the controller polling a progress file, dockerd
reading daemon.json, a person reading the results) or a crash never sees half a file.

The image's own copy of this idea is training/torchswarm/atomic.py, which the image cannot share.
"""

from __future__ import annotations

import os
import tempfile


def write_temp(path: str, data: str | bytes, mode: int = 0o644, sync: bool = True) -> str:
    """A temporary file beside ``path`` holding ``data`` with ``mode`` (set before the first byte:
    a private file is never readable by others, even for a moment), fsynced when ``sync``; returns
    its name for the caller to check and rename (or remove)."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o755, exist_ok=True)
    # A name of its own (mkstemp: 0600 from the start), also for two threads writing one path.
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, mode)
            handle.write(data.encode() if isinstance(data, str) else data)
            if sync:
                handle.flush()
                os.fsync(fd)
    except BaseException:
        os.unlink(temp)  # a full disk leaves no stray file behind
        raise
    return temp


def write_atomically(path: str, data: str | bytes, mode: int = 0o644, sync: bool = True) -> None:
    """``path`` holds ``data``, whole; with ``sync`` on disk too, rename included (a power loss
    then leaves the old file or the new one). Without, for files that are cheap to lose: a
    progress record written every second, a cache."""
    os.replace(write_temp(path, data, mode, sync), path)
    if sync:
        directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
