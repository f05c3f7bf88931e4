"""``torchswarm.report``: a user's script reports its metrics the way the bundled trainer does;
``torchswarm.step``: it says it trained a step; ``torchswarm.ready``: this rank's own part of the
step is done, what follows waits for the other ranks.

    import torchswarm
    for epoch in range(epochs):
        for batch in loader:
            loss = loss_fn(model(batch.x), batch.y)
            torchswarm.ready()  # optional: the per-rank speed then names a slow rank
            loss.backward()     # DDP's all-reduce: every rank waits for the slowest here
            optimizer.step()
            torchswarm.step()
        torchswarm.report(epoch=epoch, loss=loss, accuracy=acc)

On rank 0 it prints one JSON line (``{"event": "epoch", "epoch": 3, "loss": 0.41, ...}``) to
stdout, the line the bundled trainer prints for an epoch. The playbook's wait shows each line as
progress, and the results on the controller (summary, plots) are drawn from rank 0's log. On
every rank, an epoch's report also prints the rank's speed in that epoch (``speed``). Epochs count
from 0, as ``range`` does. Nothing is written to the snapshot volume: a file there would outlive
the run and mix with the next one's.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Any

from torchswarm import write_line

_STARTED = time.monotonic()
_stepped = False
_last_beat = 0.0
BEAT_EVERY_S = 1.0  # how often a step touches the file the launcher's stall watchdog reads


class _Speed:
    """This rank's steps since its last speed record: the time from one step to the next, and
    from a step to the next ready() (its own part of a step). A window's first step is not
    timed: the time before it holds the epoch's end (a snapshot, an evaluation)."""

    def __init__(self) -> None:
        self.steps, self.timed, self.step_s, self.owned, self.own_s = 0, 0, 0.0, 0, 0.0
        self.last: float | None = None

    def step(self, now: float) -> None:
        self.steps += 1
        if self.last is not None:
            self.timed, self.step_s = self.timed + 1, self.step_s + now - self.last
        self.last = now

    def ready(self, now: float) -> None:
        if self.last is not None:
            self.owned, self.own_s = self.owned + 1, self.own_s + now - self.last


_speed = _Speed()


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
    a ``samples_per_s`` value is plotted as the throughput. An epoch's report prints the rank's
    speed first, on every rank.
    """
    _beat()
    if event == "epoch" and epoch is not None:
        speed(epoch)
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
    write_line(json.dumps(record))
    return record


def ready() -> None:
    """Say that this rank's own part of the step is done (its data, forward and loss): call it
    just before ``loss.backward()``, where DDP's all-reduce waits for the slowest rank. Optional;
    with it, the time from a step to here is the rank's own, and the rank whose own time is well
    above the others' is named as the straggler. Costs a clock read."""
    _speed.ready(time.monotonic())


def speed(epoch: int) -> dict | None:
    """Print this rank's speed over the steps since its last speed record, on every rank (one
    line per rank and epoch, in the rank's log): ``{"event": "rank_speed", "rank": 2, "host":
    "node3", "epoch": 4, "world_size": 3, "steps": 120, "step_s": 0.21, "own_s": 0.19}``; mean
    seconds from step to step and, with ready(), of the rank's own part. ``report`` calls it for
    each epoch; a script that reports no epochs may call it itself. None when no step was taken."""
    global _speed
    window, _speed = _speed, _Speed()
    if not window.steps:
        return None
    record: dict[str, Any] = {
        "event": "rank_speed",
        "rank": int(os.environ.get("RANK", "0")),
        "host": os.environ.get("TORCHSWARM_NODE", ""),
        "epoch": int(epoch),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "steps": window.steps,
    }
    if window.timed:
        record["step_s"] = round(window.step_s / window.timed, 6)
    if window.owned:
        record["own_s"] = round(window.own_s / window.owned, 6)
    write_line(json.dumps(record))
    return record


def step() -> None:
    """Say that this rank trained a step; call it after each one.

    It counts the step for the rank's speed and touches TORCHSWARM_STEPPED_FILE at most once a
    second, so most calls cost a clock read. The first call tells the launcher the script got past
    its start (a script that fails before its first step several times in a row fails the job,
    with its error, instead of being restarted for ever) and, on rank 0, prints a ``first_step``
    record, the wait's line "training at world size N"; the later ones feed the stall watchdog
    (torchswarm.watchdog). A script that never calls either counts as started after a few minutes
    and is never judged stalled.
    """
    _speed.step(time.monotonic())
    _beat()


def _beat() -> None:
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
