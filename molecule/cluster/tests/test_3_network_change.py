"""A network setting that needs the network re-created: refused while services use it."""

from __future__ import annotations

from harness import docker_json, load_probe_image, node, run_cluster_playbook


def test_changed_subnet_is_refused_while_a_service_uses_the_network(inventory, tmp_path):
    load_probe_image("node1")
    manager = node("node0")
    manager.run("docker service rm net-user")
    manager.check_output(
        "docker service create --detach --name net-user --network ddp-net --no-resolve-image "
        "--constraint node.hostname==node1 torchswarm/probe:latest sleep 3600"
    )
    try:
        (before,) = docker_json(manager, "network inspect ddp-net")
        inventory["all"]["vars"]["network_subnet"] = "10.43.0.0/24"

        run = run_cluster_playbook(inventory, tmp_path)

        assert run.rc != 0
        assert "network ddp-net on node0" in run.output
        assert "subnet is 10.42.0.0/24, wanted 10.43.0.0/24" in run.output
        assert "services use it: net-user" in run.output
        (after,) = docker_json(manager, "network inspect ddp-net")
        assert after["Id"] == before["Id"]
        assert run.recap["node0"]["changed"] == 0
    finally:
        manager.run("docker service rm net-user")
