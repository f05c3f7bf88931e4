"""Where a stalled worker is, from its faulthandler dump: waiting in a collective for the others,
or stuck in its own code (the rank that holds the job up).

A dump (``faulthandler``, every thread, most recent call first) looks like::

    Thread 0x00007f3a1c5ff6c0 (most recent call first):
      File "/usr/lib/python3.11/threading.py", line 331 in wait
      ...
    Current thread 0x00007f3a2d1b4740 (most recent call first):
      File "/workspace/train.py", line 12 in wait_for_data
      File "/workspace/train.py", line 40 in <module>
      File "/opt/torchswarm/torchswarm/worker.py", line 95 in run

The script's thread is the one the image's worker wrapper runs it in. In it, the innermost frame
in ``torch.distributed`` names the collective it waits in; a frame in autograd is DDP's all-reduce
during backward. Otherwise the innermost frame of the script's own files (not the Python library,
not site-packages) is where it is stuck.
"""

from __future__ import annotations

import glob
import os
import re

FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')
THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+")
WRAPPER = "torchswarm/worker.py"  # the image's wrapper, at the bottom of the script's thread


def files(prefix: str) -> dict[int, str]:
    """The workers' stacks files (TORCHSWARM_STACKS_FILE-<rank>, torchswarm.worker's), by rank."""
    found = {}
    for path in glob.glob(f"{glob.escape(prefix)}-*") if prefix else []:
        suffix = path.rsplit("-", 1)[1]
        if suffix.isdigit():
            found[int(suffix)] = path
    return found


def threads(dump: str) -> list[list[tuple[str, int, str]]]:
    """Each thread's frames (file, line, function), innermost first, in the dump's order."""
    found: list[list[tuple[str, int, str]]] = []
    for line in dump.splitlines():
        if THREAD.match(line):
            found.append([])
        elif found and (frame := FRAME.match(line)):
            found[-1].append((frame["file"], int(frame["line"]), frame["func"]))
    return found


def _library(path: str) -> bool:
    return path.startswith("<") or "/lib/python" in path or "/site-packages/" in path or WRAPPER in path


def where(dump: str) -> dict[str, str]:
    """``{"waits_in": "all_reduce"}`` for a worker waiting in a collective, ``{"at": "train.py:12
    in wait_for_data"}`` for one stuck in its own code, ``{}`` when the dump shows neither."""
    found = threads(dump)
    script = next((t for t in found if any(WRAPPER in f for f, _l, _n in t)), found[-1] if found else [])
    for path, _line, func in script:
        if "torch/distributed/distributed_c10d.py" in path:
            return {"waits_in": func}
        if "torch/autograd/" in path:
            return {"waits_in": "backward (DDP's all-reduce)"}
    own = next(((f, line, n) for f, line, n in script if not _library(f)), None)
    if own is None:
        return {}
    path, line, func = own
    return {"at": f"{os.path.basename(path)}:{line} in {func}"}
