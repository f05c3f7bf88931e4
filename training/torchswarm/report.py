"""``torchswarm.report``: a user's script reports its metrics the way the bundled trainer does;
``torchswarm.step``: it says it trained a step.

    import torchswarm
    for epoch in range(epochs):
        for batch in loader:
            ...
            torchswarm.step()
        torchswarm.report(epoch=epoch, loss=loss, accuracy=acc)

On rank 0 it prints one JSON line (``{"event": "epoch", "epoch": 3, "loss": 0.41, ...}``) to
stdout, the line the bundled trainer prints for an epoch. The playbook's wait shows each line as
progress, and the results on the controller (summary, plots) are drawn from rank 0's log. Other
ranks do nothing, so every rank may call it. Epochs count from 0, as ``range`` does. Nothing is
written to the snapshot volume: a file there would outlive the run and mix with the next one's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from typing import Any

_STARTED = time.monotonic()
_stepped = False
_last_beat = 0.0
BEAT_EVERY_S = 1.0  # how often a step touches the file the launcher's stall watchdog reads


def _plain(value: Any) -> Any:
    """Tensors and numpy scalars as Python numbers; anything else JSON cannot hold as text."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and inf are not JSON
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def report(epoch: int | None = None, loss: Any = None, *, event: str = "epoch", **more: Any) -> dict | None:
    """Print one record (by default an epoch's) on rank 0; returns it there, None elsewhere.

    ``world_size`` and ``elapsed_s`` (seconds since the script started) are added unless given;
    a ``samples_per_s`` value is plotted as the throughput.
    """
    step()
    if os.environ.get("RANK", "0") != "0":
        return None
    record: dict[str, Any] = {"event": event}
    if epoch is not None:
        record["epoch"] = int(epoch)
    if loss is not None:
        record["loss"] = _plain(loss)
    record.update({key: _plain(value) for key, value in more.items()})
    record.setdefault("world_size", int(os.environ.get("WORLD_SIZE", "1")))
    record.setdefault("elapsed_s", round(time.monotonic() - _STARTED, 3))
    print(json.dumps(record), file=sys.stdout, flush=True)
    return record


def step() -> None:
    """Say that this rank trained a step; call it after each one (report() does too).

    It touches TORCHSWARM_STEPPED_FILE at most once a second, so most calls cost a clock read.
    The first call tells the launcher the script got past its start (a script that fails before
    its first step several times in a row fails the job, with its error, instead of being
    restarted for ever) and, on rank 0, prints a ``first_step`` record, the wait's line "training
    at world size N"; the later ones feed the stall watchdog (torchswarm.watchdog). A script that
    never calls either counts as started after a few minutes and is never judged stalled.
    """
    global _stepped, _last_beat
    now = time.monotonic()
    if _stepped and now - _last_beat < BEAT_EVERY_S:
        return
    first, _stepped, _last_beat = not _stepped, True, now
    path = os.environ.get("TORCHSWARM_STEPPED_FILE")
    if path:
        with contextlib.suppress(OSError):
            if first:
                with open(path, "a", encoding="utf-8") as handle:
                    handle.write(f"{os.environ.get('RANK', '?')}\n")
            else:
                os.utime(path)
    if first:
        report(event="first_step")
