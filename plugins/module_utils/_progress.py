"""The JSON records in the ranks' logs, as a manager reads them for the wait and the results.

Pure: ``docker service logs --timestamps --no-trunc`` lines in, records out. The bundled trainer
and the image's ``torchswarm.report`` helper print one JSON record per line
(``{"event": "epoch", "epoch": 3, "loss": ...}``); everything else a rank prints is left alone.
What the wait prints from them is the controller's (plugin_utils/_watch.py).
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterable
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._job import time_key

# "2026-11-26T22:00:00.123456789Z ddp_node0.1.<task id>@node0    | text" (the --timestamps
# stamp comes first; the service name, slot, task ID and node follow, then the line as written).
LOG_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\S+)\s+(?P<service>[^\s.]+)\.(?P<slot>\d+)\.(?P<task>[0-9a-z]+)"
    r"@(?P<node>\S+)\s*\|\s?(?P<text>.*)$"
)
# What log_records adds to each record: when its line was logged, and which service logged it.
LOG_KEYS = ("time", "service")


def parse_log_line(line: str) -> dict[str, str] | None:
    """One line of ``docker service logs --timestamps --no-trunc`` as its parts, or None."""
    found = LOG_LINE.match(line.rstrip("\n"))
    return found.groupdict() if found else None


def log_records(lines: Iterable[str], tasks: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The JSON records (objects with an ``event``) in service log lines, in time order, each with
    the ``time`` and ``service`` it came from. ``tasks``: keep only these task IDs' lines (the
    current deployment's), None: every task's."""
    wanted = None if tasks is None else set(tasks)
    found = []
    for line in lines:
        part = parse_log_line(line)
        if part is None or (wanted is not None and part["task"] not in wanted):
            continue
        text = part["text"].strip()
        if not text.startswith("{"):
            continue
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            found.append({**record, "time": part["time"], "service": part["service"]})
    found.sort(key=lambda r: time_key(r["time"]))
    return found


def since_with_margin(stamp: str, margin: int = 10) -> str:
    """``docker service logs --since`` for the next read: ``margin`` seconds before the newest line
    read (as Unix seconds), so a line that reaches the manager late from another node is still
    read; the overlap prints nothing twice (Watch drops records it has seen). "" stays "" (all)."""
    if not stamp:
        return ""
    head, _unused, frac = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) - margin
    return f"{seconds}.{frac or '0'}"
