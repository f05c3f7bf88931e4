"""The GPU scenario's checks use the shared helpers in molecule/resources/harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import (  # noqa: E402
    base_inventory,
    docker_json,
    epochs_of,
    metrics,
    node,
    run_playbook,
    run_site_playbook,
    stack_tasks,
    swarm_nodes,
    task_ids,
)

__all__ = [
    "STANDIN_GPUS",
    "docker_json",
    "epochs_of",
    "metrics",
    "node",
    "run_playbook",
    "run_site_playbook",
    "stack_tasks",
    "swarm_nodes",
    "task_ids",
]

# The fixed UUIDs the stand-in nvidia-smi reports, by node (node2 has none).
_HOST_VARS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["host_vars"]
STANDIN_GPUS = {name: v["standin_gpus"] for name, v in _HOST_VARS.items()}


@pytest.fixture
def inventory() -> dict:
    return base_inventory(SCENARIO)
