"""The cluster scenario's checks use the shared helpers in molecule/resources/harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import (  # noqa: E402
    PlaybookRun,
    base_inventory,
    docker_json,
    load_probe_image,
    node,
    run_playbook,
    swarm_nodes,
)

__all__ = ["docker_json", "load_probe_image", "node", "run_cluster_playbook", "swarm_nodes"]


def run_cluster_playbook(inventory: dict, tmp_path: Path, *extra_args: str) -> PlaybookRun:
    return run_playbook("converge-cluster.yml", inventory, tmp_path, *extra_args)


@pytest.fixture
def inventory() -> dict:
    return base_inventory(SCENARIO)
