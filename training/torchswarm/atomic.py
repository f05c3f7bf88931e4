"""One way to replace a file so that a crash leaves the old one or the new one, never half.

Temporary file in the same directory, fsync, rename over the target, fsync of the directory.
The snapshot, the metrics file and the completion record are all written this way.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO


def write_atomically(path: str, write: Callable[[BinaryIO], object], prefix: str = ".tmp-") -> None:
    """Create the directory if needed, let ``write`` fill a temporary file, then put it at ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
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
