"""The default scenario's checks use the shared helpers in molecule/resources/harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import (  # noqa: E402
    base_inventory,
    epochs_of,
    load_probe_image,
    metrics,
    node,
    run_site_playbook,
    stack_tasks,
    swarm_nodes,
    task_ids,
    wait_for,
)

__all__ = [
    "epochs_of",
    "load_probe_image",
    "metrics",
    "node",
    "run_site_playbook",
    "stack_tasks",
    "swarm_nodes",
    "task_ids",
    "wait_for",
]


@pytest.fixture
def inventory() -> dict:
    return base_inventory(SCENARIO)
