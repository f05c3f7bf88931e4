"""torchswarm.report: the line a user's script prints is the one the wait and the results read."""

from __future__ import annotations

import json
import math

import pytest
import torch

import torchswarm
from torchswarm.report import report


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
