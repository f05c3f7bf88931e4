"""With stand-in nvidia-smi and nvidia-container-runtime (no GPUs here): the nvidia role's
changes on GPU nodes, and none on the node without GPUs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import docker_json, node, standin_gpus, swarm_nodes

STANDIN_GPUS = standin_gpus(Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("name", ["node0", "node1"])
def test_daemon_json_gains_the_runtime_and_gpus_and_keeps_other_keys(name):
    config = json.loads(node(name).file("/etc/docker/daemon.json").content_string)
    assert config["max-concurrent-downloads"] == 4  # the admin's key, from prepare
    assert config["log-driver"] == "json-file"  # the docker role's
    assert config["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert config["default-runtime"] == "nvidia"
    assert config["node-generic-resources"] == [f"GPU={uuid}" for uuid in STANDIN_GPUS[name]]


def test_the_node_without_gpus_is_left_alone():
    config = json.loads(node("node2").file("/etc/docker/daemon.json").content_string)
    assert not {"runtimes", "default-runtime", "node-generic-resources"} & set(config)
    assert docker_json(node("node2"), "info --format '{{json .DefaultRuntime}}'") == "runc"


@pytest.mark.parametrize("name", ["node0", "node1"])
def test_the_runtime_takes_gpus_from_the_swarm(name):
    lines = node(name).file("/etc/nvidia-container-runtime/config.toml").content_string.splitlines()
    setting = lines.index('swarm-resource = "DOCKER_RESOURCE_GPU"')
    assert setting < next(i for i, line in enumerate(lines) if line.startswith("["))  # top level
    settings = [line for line in lines if re.match(r"#?\s*swarm-resource\s*=", line)]
    assert settings == ['swarm-resource = "DOCKER_RESOURCE_GPU"']  # the commented line, replaced
    assert docker_json(node(name), "info --format '{{json .DefaultRuntime}}'") == "nvidia"


def test_the_swarm_sees_each_nodes_gpus():
    nodes = swarm_nodes()
    for name in ("node0", "node1", "node2"):
        resources = nodes[name]["Description"]["Resources"].get("GenericResources") or []
        named = sorted(
            r["NamedResourceSpec"]["Value"] for r in resources if r["NamedResourceSpec"]["Kind"] == "GPU"
        )
        assert named == sorted(STANDIN_GPUS.get(name, [])), name
