"""The default scenario's checks use the shared helpers in molecule/resources/harness.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SCENARIO.parent / "resources"))

from harness import (  # noqa: E402
    FIGURES,
    MANAGER,
    base_inventory,
    controller,
    epochs_of,
    figure,
    finish_playbook,
    first_converge_log,
    first_steps_after,
    image_id,
    load_probe_image,
    metrics,
    node,
    png_size,
    ranks_complete,
    results_of,
    run_playbook,
    run_site_playbook,
    stack_tasks,
    start_playbook,
    swarm_nodes,
    task_ids,
    wait_for,
)

__all__ = [
    "MANAGER",
    "controller",
    "epochs_of",
    "figure",
    "finish_playbook",
    "first_converge_log",
    "first_steps_after",
    "image_id",
    "load_probe_image",
    "metrics",
    "node",
    "png_size",
    "ranks_complete",
    "results_of",
    "run_playbook",
    "run_site_playbook",
    "stack_tasks",
    "start_playbook",
    "swarm_nodes",
    "task_ids",
    "wait_for",
]


@pytest.fixture
def inventory() -> dict:
    return base_inventory(SCENARIO)


def pytest_terminal_summary(terminalreporter) -> None:
    """The measured figures, in CI's log even when every check passed."""
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
