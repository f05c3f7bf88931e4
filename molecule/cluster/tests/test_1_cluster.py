"""The converged cluster: Docker on every node, a three-node swarm, the overlay network."""

from __future__ import annotations

import json

import pytest

from harness import docker_json, load_probe_image, node, swarm_nodes

NODES = ["node0", "node1", "node2"]

HOST_LABEL = "io.torchswarm.inventory-host"


def test_the_cluster_mixes_debian_12_and_13_each_with_its_own_docker_io():
    found = {
        name: (
            node(name).check_output("cut -d. -f1 /etc/debian_version"),
            node(name).check_output("docker version --format '{{.Server.Version}}'").split(".")[0],
        )
        for name in NODES
    }
    assert found == {"node0": ("12", "20"), "node1": ("13", "26"), "node2": ("12", "20")}


@pytest.mark.parametrize("name", NODES)
def test_docker_is_active_and_enabled(name):
    service = node(name).service("docker")
    assert service.is_running
    assert service.is_enabled


@pytest.mark.parametrize("name", NODES)
def test_docker_users_can_run_docker(name):
    assert "docker" in node(name).user("trainer").groups
    assert node(name).run("su trainer -s /bin/sh -c 'docker info --format {{.ID}}'").rc == 0


@pytest.mark.parametrize("name", NODES)
def test_daemon_json_keeps_admin_key_and_gains_ours(name):
    config = json.loads(node(name).file("/etc/docker/daemon.json").content_string)
    assert config["max-concurrent-downloads"] == 4  # written by prepare.yml, an admin's key
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "50m", "max-file": "5"}
    # ...and the running daemon uses it
    assert node(name).check_output("docker info --format '{{.LoggingDriver}}'") == "json-file"


@pytest.mark.parametrize("name", NODES)
def test_a_bare_host_s_docker_started_once_reading_our_daemon_json(name):
    # daemon.json was written before Docker was installed, so nothing had to restart it.
    journal = node(name).check_output("journalctl --unit docker --output cat --no-pager")
    starts = [line for line in journal.splitlines() if line.startswith("Starting docker.service")]
    assert len(starts) == 1, f"{name}: Docker started {len(starts)} times in this converge"


def test_swarm_has_three_ready_nodes_with_the_right_roles_and_labels():
    nodes = swarm_nodes()
    assert sorted(nodes) == NODES
    for name, info in nodes.items():
        assert info["Status"]["State"] == "ready", name
        assert info["Spec"]["Availability"] == "active", name
    assert nodes["node0"]["Spec"]["Role"] == "manager"
    assert nodes["node0"]["ManagerStatus"]["Leader"] is True
    assert nodes["node1"]["Spec"]["Role"] == "worker"
    assert nodes["node2"]["Spec"]["Role"] == "worker"
    # io.torchswarm.inventory-host: how a manager finds a host that is gone (the swarm role).
    assert nodes["node0"]["Spec"]["Labels"] == {"rack": "a", "role": "rendezvous", HOST_LABEL: "node0"}
    assert nodes["node2"]["Spec"]["Labels"] == {"rack": "b", HOST_LABEL: "node2"}


def test_overlay_network_is_attachable_with_the_configured_subnet_and_mtu():
    (net,) = docker_json(node("node0"), "network inspect ddp-net")
    assert net["Driver"] == "overlay"
    assert net["Scope"] == "swarm"
    assert net["Attachable"] is True
    assert [c["Subnet"] for c in net["IPAM"]["Config"]] == ["10.42.0.0/24"]
    assert net["Options"]["com.docker.network.driver.mtu"] == "1450"


def test_container_on_one_worker_reaches_container_on_the_other_over_the_overlay():
    load_probe_image("node1", "node2")
    server, client = node("node1"), node("node2")
    server.run("docker rm -f overlay-server")
    server.check_output(
        "docker run -d --name overlay-server --network ddp-net torchswarm/probe:latest "
        "sh -c 'mkdir -p /www && echo overlay-ok > /www/index.html && httpd -f -p 8080 -h /www'"
    )
    try:
        addr = server.check_output(
            "docker inspect -f '{{(index .NetworkSettings.Networks \"ddp-net\").IPAddress}}' overlay-server"
        )
        assert addr.startswith("10.42.0.")
        # By name (swarm DNS for attachable containers) and by address; retried while the
        # overlay's peer entries propagate between nodes.
        for target in ("overlay-server", addr):
            got = client.run(
                "for i in $(seq 1 20); do docker run --rm --network ddp-net torchswarm/probe:latest "
                f"sh -c \"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {target} 8080\" && exit 0; "
                "sleep 1; done; exit 1"
            )
            assert got.rc == 0, got.stderr
            assert got.stdout.strip().endswith("overlay-ok"), got.stdout
        mtu = client.check_output(
            "docker run --rm --network ddp-net torchswarm/probe:latest cat /sys/class/net/eth0/mtu"
        )
        # Docker's option is the underlay's MTU; the overlay's VXLAN header takes 50 bytes of it.
        assert mtu == str(1450 - 50)
    finally:
        server.run("docker rm -f overlay-server")
