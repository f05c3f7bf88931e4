"""The default scenario's checks: the shared helpers, plus the job's tasks and metrics."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import PlaybookRun, base_inventory, load_probe_image, node, run_playbook, swarm_nodes  # noqa: E402

__all__ = ["load_probe_image", "node", "swarm_nodes"]


def run_site_playbook(inventory: dict, tmp_path: Path, *extra_args: str) -> PlaybookRun:
    return run_playbook("converge-site.yml", inventory, tmp_path, *extra_args)


def stack_tasks(stack: str) -> dict[str, list[dict]]:
    """Every task the swarm has started for each of the stack's services, newest first."""
    result = node("node0").run(f"docker stack ps {stack} --no-trunc --format '{{{{json .}}}}'")
    if result.rc != 0 and "nothing found in stack" in result.stderr:
        return {}
    assert result.rc == 0, result.stderr
    out = result.stdout
    tasks: dict[str, list[dict]] = {}
    for line in out.splitlines():
        task = json.loads(line)
        tasks.setdefault(task["Name"].rsplit(".", 1)[0], []).append(task)
    return tasks


def task_ids(stack: str) -> dict[str, list[str]]:
    """The stack's tasks by service: what changes when the swarm starts or restarts one (the
    CurrentState text, "Complete 2 minutes ago", changes by itself)."""
    return {service: [t["ID"] for t in history] for service, history in stack_tasks(stack).items()}


def metrics(stack: str, rank0: str = "node0") -> list[dict]:
    """The trainer's metrics.jsonl from node rank 0's snapshot volume."""
    path = f"/var/lib/docker/volumes/{stack}-snapshots/_data/metrics.jsonl"
    host = node(rank0)
    if not host.file(path).exists:
        return []
    records = []
    for line in host.file(path).content_string.splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            records.append(json.loads(line))
    return records


def epochs_of(records: list[dict]) -> list[int]:
    return [r["epoch"] for r in records if r["event"] == "epoch"]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def inventory() -> dict:
    return base_inventory(SCENARIO)
