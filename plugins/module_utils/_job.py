"""What a deployed training job is doing, from the swarm's task list and the trainer's metrics.

Pure but for run_files, which reads a node's snapshot directory: ``docker inspect`` JSON and
metrics lines in, tables and summaries out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    HASH_LABEL,
    HOST_LABEL,
    METRICS_FILE,
    RANK_LABEL,
    ROLE_LABEL,
    completion_record,
)

GAVE_UP = {"failed", "rejected", "orphaned"}
# The image's launcher exits with this code when the script reported input that no restart
# can fix (zero steps per epoch, an unwritable snapshot directory, bad arguments): the job has
# failed, however many restarts the swarm has left.
EXIT_DO_NOT_RETRY = 3


def _of_deployment(task: Mapping[str, Any], service: Mapping[str, Any]) -> bool:
    """Whether a task belongs to the service's current deployment (the stack hash it carries as
    a container label), not to one that an update replaced."""
    wanted = (service["Spec"].get("Labels") or {}).get(HASH_LABEL)
    labels = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
    return wanted is None or labels.get(HASH_LABEL, wanted) == wanted


def _gave_up(service: Mapping[str, Any], history: list[Mapping[str, Any]]) -> bool:
    """Whether the swarm stopped restarting the service's rank: its newest task failed, is to
    stay down, and as many failed as the restart policy's MaxAttempts (none: it never stops).
    A failed task alone is not that: the swarm's replacement may not be listed yet."""
    policy = ((service["Spec"].get("TaskTemplate") or {}).get("RestartPolicy") or {}).get("MaxAttempts") or 0
    if not history or not policy:
        return False
    newest = history[-1]
    failed = sum(1 for t in history if (t.get("Status") or {}).get("State") in GAVE_UP)
    return (
        (newest.get("Status") or {}).get("State") in GAVE_UP
        and newest.get("DesiredState") == "shutdown"
        and failed >= policy
    )


def time_key(stamp: str) -> tuple[str, str]:
    """RFC 3339 with trailing zeros trimmed from the fraction does not sort as text; pad it."""
    head, _unused, frac = stamp.rstrip("Z").partition(".")
    return head, frac.ljust(9, "0")


def job_tasks(
    stack: str,
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    node_names: Mapping[str, str],
    ready: Iterable[str] | None = None,
) -> dict[str, Any]:
    """One row per rank's service (its newest task) and the job's state.

    ``services`` and ``tasks`` are ``docker service inspect`` / ``docker inspect`` output;
    ``node_names`` maps node IDs to hostnames; ``ready`` lists the hostnames of the swarm's
    ready nodes (None: not known). A rank pinned to a node that is not ready is ``lost``. Only
    tasks of the current deployment count, never those of one an update replaced. The
    rendezvous service is not a rank. The state is:

    - ``absent``: no services;
    - ``complete``: every rank's task that is not lost completed (the launcher exits 0 only
      when training finished; a rank stopped by SIGTERM exits non-zero);
    - ``failed``: a task exited with EXIT_DO_NOT_RETRY, or the swarm gave up on a service (its
      restart policy's MaxAttempts failed tasks);
    - ``recovering``: a rank is lost, or a task of this deployment ended and the swarm is
      restarting ranks;
    - ``running``: every rank's task is up (or starting for the first time).
    """
    ready_hosts = None if ready is None else set(ready)
    by_service: dict[str, list[Mapping[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(task["ServiceID"], []).append(task)
    rows = []
    task_ids: list[str] = []  # every task of the current deployments (their logs are this run's)
    refused = gave_up = False
    for service in services:
        history = sorted(
            (t for t in by_service.get(service["ID"], []) if _of_deployment(t, service)),
            key=lambda t: time_key(t.get("CreatedAt", "")),
        )
        task_ids += [t["ID"] for t in history]
        labels = service["Spec"].get("Labels") or {}
        if ROLE_LABEL in labels:
            continue
        refused = refused or any(
            ((t.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode") == EXIT_DO_NOT_RETRY
            for t in history
        )
        pinned = labels.get(HOST_LABEL, "")
        lost = bool(pinned) and ready_hosts is not None and pinned not in ready_hosts
        # A lost node's rank is not given up on: its tasks fail while the node is down.
        gave_up = gave_up or (not lost and _gave_up(service, history))
        row: dict[str, Any] = {
            "service": service["Spec"]["Name"],
            "rank": int(labels.get(RANK_LABEL, -1)),
            "node": "",
            "state": "new",
            "desired_state": "",
            "exit_code": None,
            "error": "",
            "tasks": len(history),
            "task_id": "",
            "host": pinned,  # the node the rank is pinned to (its task may not be placed yet)
            "lost": lost,
        }
        if history:
            current = history[-1]
            status = current.get("Status", {})
            row.update(
                node=node_names.get(current.get("NodeID", ""), current.get("NodeID", "")),
                state=status.get("State", ""),
                desired_state=current.get("DesiredState", ""),
                exit_code=(status.get("ContainerStatus") or {}).get("ExitCode"),
                error=status.get("Err", ""),
                task_id=current["ID"],
            )
        rows.append(row)
    rows.sort(key=lambda r: (r["rank"], r["service"]))
    there = [r for r in rows if not r["lost"]]
    if not rows:
        state = "absent"
    elif there and all(r["state"] == "complete" for r in there):
        state = "complete"
    elif refused or gave_up:
        state = "failed"
    elif len(there) < len(rows) or (
        any(r["tasks"] > 1 or r["state"] in GAVE_UP for r in rows)
        and not all(r["state"] == "running" for r in rows)
    ):
        state = "recovering"
    else:
        state = "running"
    lost = [r["service"] for r in rows if r["lost"]]
    training = sum(1 for r in there if r["state"] == "running")
    return {
        "stack": stack,
        "state": state,
        "services": rows,
        "lost": lost,
        "training_hosts": training,
        "task_ids": sorted(task_ids),
    }


def run_files(snapshot_dir: str, generation: str) -> dict[str, Any]:
    """A node's completion record of the generation ({} when it did not complete there, or the
    record is another's) and its metrics.jsonl text ('' when there is none)."""
    try:
        record = json.loads(_text_of(os.path.join(snapshot_dir, completion_record(generation))) or "{}")
    except ValueError:
        record = {}  # the launcher writes it whole or not at all; never trust half a record
    ours = isinstance(record, dict) and record.get("generation") == generation
    metrics = _text_of(os.path.join(snapshot_dir, METRICS_FILE))
    return {"completion": record if ours else {}, "metrics": metrics}


def _text_of(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def metrics_records(text: str) -> list[dict[str, Any]]:
    """metrics.jsonl as its records (JSON objects with an ``event``)."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # blank, or a line cut short by a kill; the trainer rewrites its records on resume
        if isinstance(record, dict) and "event" in record:
            records.append(record)
    return records


def summarize_metrics(records: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics records summed up: the last run's summary and every epoch's line.

    ``epochs_trained`` lists epoch numbers in the order their lines were written, so an epoch
    trained twice would show twice.
    """
    epochs = [r for r in records if r.get("event") == "epoch"]
    summaries = [r for r in records if r.get("event") == "summary"]
    last = summaries[-1] if summaries else {}
    return {
        "finished": bool(summaries),
        "epochs": last.get("epochs"),
        "final_loss": last.get("final_loss", epochs[-1]["loss"] if epochs else None),
        "world_size": last.get("world_size", epochs[-1]["world_size"] if epochs else None),
        "wall_s": last.get("wall_s"),
        "resumed_from": last.get("resumed_from"),
        "device": last.get("device"),
        "epochs_trained": [r["epoch"] for r in epochs],
        "world_sizes": sorted({r["world_size"] for r in epochs}),
        "runs": len(summaries),
    }


def status_table(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The services' rows as aligned text lines, a header first."""
    header = ("RANK", "SERVICE", "NODE", "STATE", "DESIRED", "EXIT", "TASKS", "ERROR")
    table = [header] + [
        (
            str(r["rank"]),
            r["service"],
            r["node"] or "-",
            r["state"],
            r["desired_state"] or "-",
            "-" if r["exit_code"] is None else str(r["exit_code"]),
            str(r["tasks"]),
            "node down: rank lost" if r.get("lost") else r["error"] or "",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]


# Characters a job or run name may keep in a path below the results directory.
SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def run_dir_name(job: str, run: str) -> str:
    """``<job>/<run>`` as a path below the results directory, whatever the names hold."""
    return f"{SAFE_NAME.sub('_', job)}/{SAFE_NAME.sub('_', run or 'unknown')}"
