"""The preflight playbook on the GPU scenario's cluster: every node passes, the all-reduce between
the five processes prints bus bandwidth, and its stack and scratch volumes are gone afterwards; a
missing image fails the check naming every node."""

from __future__ import annotations

import re

from harness import node, run_playbook


def test_every_node_passes_and_the_allreduce_prints_bus_bandwidth(inventory, tmp_path):
    run = run_playbook("preflight.yml", inventory, tmp_path)

    assert run.rc == 0
    assert "Preflight: all 3 nodes ready" in run.output
    assert "allreduce: world size 5, gloo on cpu" in run.output
    sizes = re.findall(r"allreduce:\s+(\d+) B\s+[\d.]+ ms\s+busbw\s+[\d.]+ GB/s", run.output)
    assert sizes == [str(4 * 1024), str(1024**2), str(16 * 1024**2), str(64 * 1024**2)]
    assert "allreduce: ok" in run.output
    services = node("node0").check_output(
        "docker service ls -q --filter label=com.docker.stack.namespace=preflight"
    )
    assert services == ""  # the all-reduce's stack is gone
    for name in ("node0", "node1", "node2"):
        volumes = node(name).check_output("docker volume ls -q --filter name=preflight-scratch")
        assert volumes == "", name  # and so is its scratch volume


def test_a_missing_image_is_named_on_every_training_node(inventory, tmp_path):
    inventory["all"]["vars"]["job_image"] = "torchswarm/not-built:1"

    run = run_playbook("preflight.yml", inventory, tmp_path)

    assert run.rc != 0
    for name in ("node0", "node1", "node2"):
        assert f"host {name}: the training image torchswarm/not-built:1 is not on this node" in run.output
    assert "allreduce: world size" not in run.output


def test_a_gpu_the_node_advertises_but_no_longer_lists_is_named(inventory, tmp_path):
    """As after a GPU fell off the bus: the STAND-IN nvidia-smi on node1 lists one GPU fewer than
    node1's daemon.json advertises to the swarm."""
    listed = "/etc/torchswarm-standin/gpus"
    gone = node("node1").file(listed).content_string.split()[-1]
    node("node1").check_output(f"cp {listed} {listed}.bak && sed -i '$d' {listed}")
    try:
        run = run_playbook("preflight.yml", inventory, tmp_path)
    finally:
        node("node1").check_output(f"mv {listed}.bak {listed}")

    assert run.rc != 0
    text = " ".join(run.output.split())
    assert f"host node1: it advertises GPU(s) to the swarm that nvidia-smi -L does not list: {gone}" in text
    assert "host node0: it advertises" not in text
    assert "allreduce: world size" not in run.output
