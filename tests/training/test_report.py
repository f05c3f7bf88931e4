"""torchswarm.report: the line a user's script prints is the one the wait and the results read."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

import torchswarm
from torchswarm.report import report

# The module (torchswarm.report is the function): step() keeps whether it ran in this process.
REPORT = sys.modules["torchswarm.report"]


@pytest.fixture(autouse=True)
def stepped(monkeypatch):
    """As after a first step, so that report() prints only its own record, and no step counted
    for the rank's speed; a test may undo it."""
    monkeypatch.setattr(REPORT, "_stepped", True)
    monkeypatch.setattr(REPORT, "_speed", REPORT._Speed())


class Clock:
    """time.monotonic for the report module, moved on by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


def test_rank0_prints_one_json_epoch_record_with_world_size_and_time(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    record = torchswarm.report(
        epoch=2, loss=torch.tensor(0.25), accuracy=torch.tensor([0.5]).mean(), note="x"
    )
    line = capsys.readouterr().out.strip()
    assert json.loads(line) == record
    assert record["event"] == "epoch" and record["epoch"] == 2 and record["loss"] == 0.25
    assert record["accuracy"] == 0.5 and record["note"] == "x" and record["world_size"] == 4
    assert record["elapsed_s"] >= 0


def test_other_ranks_print_nothing(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    assert report(epoch=0, loss=1.0) is None
    assert capsys.readouterr().out == ""


def test_values_json_cannot_hold_become_text(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    record = report(epoch=0, loss=math.nan, shape=(2, 3), world_size=2)
    assert record["loss"] == "nan" and record["shape"] == "(2, 3)" and record["world_size"] == 2
    out = capsys.readouterr().out
    json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


def test_the_first_step_tells_the_launcher_and_prints_one_record_on_rank0(monkeypatch, capsys, tmp_path):
    stepped_file = tmp_path / "stepped"
    monkeypatch.setattr(REPORT, "_stepped", False)
    monkeypatch.setenv("TORCHSWARM_STEPPED_FILE", str(stepped_file))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    for _unused in range(5):
        torchswarm.step()
    report(epoch=0, loss=1.0)
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event"] for r in records] == ["first_step", "rank_speed", "epoch"]
    assert records[0]["world_size"] == 3
    assert stepped_file.read_text() == "0\n"


def test_reporting_an_epoch_is_a_step_and_other_ranks_only_tell_the_launcher(monkeypatch, capsys, tmp_path):
    stepped_file = tmp_path / "stepped"
    monkeypatch.setattr(REPORT, "_stepped", False)
    monkeypatch.setenv("TORCHSWARM_STEPPED_FILE", str(stepped_file))
    monkeypatch.setenv("RANK", "2")
    report(epoch=0, loss=1.0)
    report(epoch=1, loss=0.5)
    assert capsys.readouterr().out == ""
    assert stepped_file.read_text() == "2\n"


def test_each_rank_prints_its_speed_per_epoch_its_own_time_from_a_step_to_ready(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr(REPORT, "time", clock)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("TORCHSWARM_NODE", "node3")
    for own, wait in ((0.5, 0.1), (0.3, 0.3), (0.4, 0.2)):
        clock.now += own
        torchswarm.ready()
        clock.now += wait
        torchswarm.step()
    report(epoch=4, loss=1.0)  # another rank's report prints no epoch record
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The first step is not timed: the time before it holds the last epoch's end.
    assert record == {
        "event": "rank_speed",
        "rank": 2,
        "host": "node3",
        "epoch": 4,
        "world_size": 3,
        "steps": 3,
        "step_s": 0.6,
        "own_s": 0.35,
    }
    # The next epoch counts from there; a window without a step prints nothing.
    clock.now += 1.0
    torchswarm.step()
    clock.now += 0.25
    torchswarm.step()
    second = torchswarm.speed(5)
    assert second == {
        **{k: v for k, v in record.items() if k != "own_s"},
        "epoch": 5,
        "steps": 2,
        "step_s": 0.25,
    }
    assert torchswarm.speed(6) is None
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [second]
