"""The registry scenario's checks use the shared helpers in molecule/resources/harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import (  # noqa: E402
    controller,
    first_converge_log,
    image_id,
    metrics,
    node,
    png_size,
    results_of,
    run_playbook,
    ssh_inventory,
    stack_tasks,
)

__all__ = [
    "controller",
    "first_converge_log",
    "image_id",
    "metrics",
    "node",
    "png_size",
    "results_of",
    "run_playbook",
    "stack_tasks",
]


@pytest.fixture
def inventory() -> dict:
    return ssh_inventory(SCENARIO)
