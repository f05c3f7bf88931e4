"""The preflight's all-reduce through real torchrun: two processes, gloo on CPU."""

from __future__ import annotations

import re

import pytest
from allreduce_check import bus_bandwidth, parse_size

from conftest import finish, torchrun


def test_every_size_is_reduced_correctly_and_its_bus_bandwidth_printed():
    rc, out = finish(torchrun(["--sizes", "4K,1M", "--iters", "2"], script="allreduce_check.py"))
    assert rc == 0, out
    assert "allreduce: world size 2, gloo on cpu" in out
    rows = re.findall(r"allreduce:\s+(\d+) B\s+([\d.]+) ms\s+busbw\s+([\d.]+) GB/s", out)
    assert [int(r[0]) for r in rows] == [4096, 1024**2]
    assert all(float(r[2]) > 0 for r in rows)
    assert out.count("allreduce: ok") == 1  # rank 0 only


def test_bus_bandwidth_is_nccl_tests_busbw():
    # 1 GB in 1 s on 4 ranks: algbw 1 GB/s, busbw 1.5 GB/s; one rank moves nothing.
    assert bus_bandwidth(10**9, 1.0, 4) == pytest.approx(1.5e9)
    assert bus_bandwidth(10**9, 1.0, 1) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"), [("4K", 4096), ("16m", 16 * 1024**2), ("1GB", 1024**3), ("64", 64)]
)
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "2", "x", "1T", "-4K"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(Exception, match="is not a size"):
        parse_size(text)
