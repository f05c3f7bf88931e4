"""What every scenario's checks share, loaded by pytest for each of them (molecule runs pytest
from the project's root): molecule/resources on the path, so a check imports its helpers from
harness; the converged inventory as a fixture; and the figures the checks measured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "resources"))

from harness import FIGURES, scenario_inventory


@pytest.fixture
def inventory(request) -> dict:
    """The converged inventory of the scenario the check belongs to."""
    return scenario_inventory(Path(request.path).resolve().parents[1])


def pytest_terminal_summary(terminalreporter) -> None:
    """The measured figures, in CI's log even when every check passed."""
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
