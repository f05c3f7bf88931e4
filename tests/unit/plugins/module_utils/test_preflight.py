"""The preflight's verdict on one node, from the task results it read there."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._preflight import node_problems

SMI = "GPU 0: NVIDIA H100 (UUID: GPU-aaaa)\nGPU 1: NVIDIA H100 (UUID: GPU-bbbb)\n"


def info(**overrides) -> dict:
    """community.docker.docker_host_info's result."""
    engine = {"Swarm": {"LocalNodeState": "active"}, "Runtimes": {"runc": {}}, "DefaultRuntime": "runc"}
    engine.update(overrides)
    return {"changed": False, "can_talk_to_docker": True, "host_info": engine}


def swarm_nodes(**states) -> list[dict]:
    """community.docker.docker_node_info's nodes, hostname -> state."""
    return [{"Description": {"Hostname": h}, "Status": {"State": s}} for h, s in states.items()]


READY = {
    "docker_info": info(),
    "nvidia_smi": {"rc": 2, "msg": "[Errno 2] No such file or directory"},
    "image": "t:1",
    "image_info": {"images": [{"Id": "sha256:1"}]},
    "swarm_nodes": swarm_nodes(node0="ready", node1="ready"),
    "hostname": "node1",
    "ports": [{"item": ["10.0.0.1", 2377], "state": "started", "elapsed": 0}],
}


# docker info's GenericResources of a node whose daemon.json advertises SMI's two GPUs.
ADVERTISED = [{"NamedResourceSpec": {"Kind": "GPU", "Value": u}} for u in ("GPU-aaaa", "GPU-bbbb")]


def test_a_ready_node_has_no_problems():
    assert node_problems(READY) == []
    gpu_node = {
        "docker_info": info(Runtimes={"nvidia": {}}, DefaultRuntime="nvidia", GenericResources=ADVERTISED),
        "nvidia_smi": {"rc": 0, "stdout": SMI},
    }
    assert node_problems({**READY, **gpu_node}) == []
    assert node_problems({**READY, "image_info": {"skipped": True}}) == []  # not a training node


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (
            {"docker_info": {"failed": True, "can_talk_to_docker": False, "msg": "Error connecting: x"}},
            "Docker does not answer (Error connecting: x)",
        ),
        (
            {"docker_info": info(Swarm={"LocalNodeState": "inactive"})},
            "not a swarm member (state 'inactive')",
        ),
        ({"swarm_nodes": swarm_nodes(node0="ready", node1="down")}, "the swarm sees it as down"),
        ({"nvidia_smi": {"rc": 0, "stdout": SMI}}, "2 GPUs but no nvidia runtime in Docker"),
        (
            {"nvidia_smi": {"rc": 0, "stdout": SMI}, "docker_info": info(Runtimes={"nvidia": {}})},
            "2 GPUs but the default runtime is runc",
        ),
        (
            {
                "nvidia_smi": {"rc": 0, "stdout": SMI.splitlines()[0]},
                "docker_info": info(
                    Runtimes={"nvidia": {}}, DefaultRuntime="nvidia", GenericResources=ADVERTISED
                ),
            },
            "it advertises GPU(s) to the swarm that nvidia-smi -L does not list: GPU-bbbb (gone from the bus",
        ),
        (
            {
                "nvidia_smi": {
                    "rc": 9,
                    "stdout": "Failed to initialize NVML: Driver/library version mismatch",
                },
                "docker_info": info(
                    Runtimes={"nvidia": {}}, DefaultRuntime="nvidia", GenericResources=ADVERTISED
                ),
            },
            "it advertises 2 GPU(s) to the swarm but nvidia-smi -L fails (Failed to initialize NVML",
        ),
        (
            {"image_info": {"images": []}},
            "the training image t:1 is not on this node",
        ),
        (
            {"ports": [{"item": ["10.0.0.1", 2377], "msg": "Timeout when waiting for 10.0.0.1:2377"}]},
            "cannot reach 10.0.0.1 on 2377/tcp (Timeout when waiting for 10.0.0.1:2377)",
        ),
    ],
)
def test_each_problem_is_named(checks, expected):
    problems = node_problems({**READY, **checks})
    assert len(problems) == 1 and expected in problems[0], problems
