"""Grow and shrink the swarm through the inventory: only the host that moves changes. As
community.docker's tests do: check mode first, then apply, apply again, and check mode again."""

from __future__ import annotations

from harness import node, run_cluster_playbook, swarm_nodes


def test_check_mode_on_a_new_bare_host_says_what_would_change_and_changes_nothing(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {"swarm_node_labels": {"rack": "c"}}
    admins = node("node3").file("/etc/docker/daemon.json").content_string
    members = sorted(swarm_nodes())

    run = run_cluster_playbook(inventory, tmp_path, "--check", "--diff")

    assert run.rc == 0
    assert run.recap["node3"]["changed"] > 0
    for name in ("node0", "node1", "node2"):
        assert run.recap[name]["changed"] == 0, (name, run.recap)
    assert "host node3: check mode, no Docker engine answers here yet" in run.output
    assert '"log-driver": "json-file"' in run.output  # the daemon.json it would write, as a diff
    assert node("node3").run("command -v dockerd").rc != 0
    assert node("node3").file("/etc/docker/daemon.json").content_string == admins
    assert sorted(swarm_nodes()) == members


def test_scale_out_adds_only_the_new_host(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {"swarm_node_labels": {"rack": "c"}}

    # Most verbose output, where a leaked token would show.
    run = run_cluster_playbook(inventory, tmp_path, "-vvv")

    assert run.rc == 0
    manager = node("node0")
    for kind in ("worker", "manager"):
        token = manager.check_output(f"docker swarm join-token -q {kind}")
        assert token.startswith("SWMTKN-")
        assert token not in run.output, f"the {kind} join token is in the playbook's output"
    assert "TASK [torchswarm.ddp.swarm : Join the swarm (output hidden" in run.output
    assert run.recap["node3"]["changed"] > 0
    for name in ("node0", "node1", "node2"):
        assert run.recap[name]["changed"] == 0, (name, run.recap)
    nodes = swarm_nodes()
    assert sorted(nodes) == ["node0", "node1", "node2", "node3"]
    assert nodes["node3"]["Status"]["State"] == "ready"
    assert nodes["node3"]["Spec"]["Role"] == "worker"
    assert nodes["node3"]["Spec"]["Labels"] == {"rack": "c", "io.torchswarm.inventory-host": "node3"}

    again = run_cluster_playbook(inventory, tmp_path)
    assert again.rc == 0
    again.assert_unchanged("node0", "node1", "node2", "node3")

    checked = run_cluster_playbook(inventory, tmp_path, "--check")
    assert checked.rc == 0
    checked.assert_unchanged("node0", "node1", "node2", "node3")


def test_scale_in_drains_and_removes_only_that_host(inventory, tmp_path):
    assert "node3" in swarm_nodes(), "runs after the scale-out test"
    inventory["workers"]["hosts"]["node3"] = {"swarm_node_state": "absent"}

    run = run_cluster_playbook(inventory, tmp_path)

    assert run.rc == 0
    assert run.recap["node3"]["changed"] > 0
    for name in ("node0", "node1", "node2"):
        assert run.recap[name]["changed"] == 0, (name, run.recap)
    assert sorted(swarm_nodes()) == ["node0", "node1", "node2"]
    assert node("node3").check_output("docker info --format '{{.Swarm.LocalNodeState}}'") == "inactive"

    again = run_cluster_playbook(inventory, tmp_path)
    assert again.rc == 0
    again.assert_unchanged("node0", "node1", "node2", "node3")
