"""The guide's own two-node commands, verbatim, against our image on a user-defined network.

    docker run ... --name node0 ... torchrun --nproc_per_node=1 --nnodes=2 --node_rank=0 \\
        --master_addr=node0 --master_port=12355 training_code.py 10 2 --batch_size 32

Needs a Docker engine and the image (`make trainer-image`).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

IMAGE = os.environ.get("TORCHSWARM_TRAINER_IMAGE", "torchswarm/trainer:latest")
NETWORK = "torchswarm-guide"


def guide_command(node_rank: int) -> list[str]:
    return [
        "torchrun",
        "--nproc_per_node=1",
        "--nnodes=2",
        f"--node_rank={node_rank}",
        "--master_addr=node0",
        "--master_port=12355",
        "training_code.py",
        "10",
        "2",
        "--batch_size",
        "32",
    ]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


def container_log(name: str) -> str:
    done = docker("logs", name)
    return done.stdout + done.stderr


@pytest.fixture
def network():
    docker("rm", "-f", "node0", "node1", check=False)
    docker("network", "rm", NETWORK, check=False)
    docker("network", "create", NETWORK)
    yield NETWORK
    docker("rm", "-f", "node0", "node1", check=False)
    docker("network", "rm", NETWORK, check=False)


def test_the_guides_two_node_commands_finish(network):
    for rank in (0, 1):
        docker("run", "-d", "--name", f"node{rank}", "--network", network, IMAGE, *guide_command(rank))

    codes = [int(docker("wait", f"node{rank}").stdout.strip()) for rank in (0, 1)]
    logs = [container_log(f"node{rank}") for rank in (0, 1)]
    for log in logs:
        print(log)

    assert codes == [0, 0]
    records = [json.loads(line) for line in logs[0].splitlines() if line.startswith('{"event"')]
    assert [r["epoch"] for r in records if r["event"] == "epoch"] == list(range(10))
    summary = records[-1]
    assert summary["event"] == "summary"
    assert (summary["world_size"], summary["backend"]) == (2, "gloo")
    # Rank 1 reports what its launcher found in its container, as every host's does, and its own
    # speed in each epoch; no metrics.
    rank1 = [json.loads(line) for line in logs[1].splitlines() if line.startswith('{"event"')]
    assert [r["event"] for r in rank1] == ["host_check"] + ["rank_speed"] * 10 and rank1[0]["shm_bytes"] > 0
    assert [(r["rank"], r["epoch"]) for r in rank1[1:]] == [(1, e) for e in range(10)]
    assert [r["event"] for r in records][:2] == ["host_check", "first_step"]
