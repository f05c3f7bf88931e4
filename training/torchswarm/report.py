"""``torchswarm.report``: a user's script reports its metrics the way the bundled trainer does.

    import torchswarm
    for epoch in range(epochs):
        ...
        torchswarm.report(epoch=epoch, loss=loss, accuracy=acc)

On rank 0 it prints one JSON line (``{"event": "epoch", "epoch": 3, "loss": 0.41, ...}``) to
stdout, the line the bundled trainer prints for an epoch. The playbook's wait shows each line as
progress, and the results on the controller (summary, plots) are drawn from rank 0's log. Other
ranks do nothing, so every rank may call it. Epochs count from 0, as ``range`` does. Nothing is
written to the snapshot volume: a file there would outlive the run and mix with the next one's.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

_STARTED = time.monotonic()


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
