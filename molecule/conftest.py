"""What every scenario's checks share, loaded by pytest for each of them (molecule runs pytest
from the project's root): molecule/resources on the path, so a check imports its helpers from
harness; the converged inventory as a fixture; and the figures the checks measured."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "resources"))

from harness import FAILED_RUNS, FIGURES, scenario_inventory


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


_PHASES: dict[str, list] = {}


def pytest_runtest_setup(item) -> None:
    FAILED_RUNS.clear()  # the playbook runs that failed, this check's only


def pytest_runtest_logreport(report) -> None:
    """Each check's wall time (setup, call and teardown), and why it failed, for the table that
    make test prints at its end (tests/harness/timings.py sets TORCHSWARM_TIMINGS to its records)."""
    phases = _PHASES.setdefault(report.nodeid, [])
    phases.append(report)
    path = os.environ.get("TORCHSWARM_TIMINGS")
    if report.when != "teardown" or not path:
        return
    failed = next((r for r in phases if r.outcome != "passed"), None)
    outcome = failed.outcome if failed else "passed"
    seconds = sum(r.duration for r in phases)
    scenario = os.environ.get("MOLECULE_SCENARIO_NAME", "?")
    check = report.nodeid.rsplit("/", 1)[-1]
    with open(path, "a") as records:
        records.write(f"check\t{scenario}: {check}\t{seconds:.1f}\t{outcome}\t{time.time() - seconds:.1f}\n")
        if failed and failed.longrepr:
            # Why, on one line: CI keeps only the end of its log, where the table is.
            records.write(f"why\t{scenario}: {check}\t0\t{_why(failed)}\t{time.time():.1f}\n")


def _why(report) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash else str(report.longrepr).strip().splitlines()[-1]
    failed_runs = f" [failed playbook runs in this check: {' || '.join(FAILED_RUNS)}]" if FAILED_RUNS else ""
    return " ".join(text.split())[:400] + failed_runs[:1200]
