"""A host that belongs to another swarm: refused by default, taken over when forced.

Runs last: node3 ends as a manager that is then scaled in, which also covers demotion.
"""

from __future__ import annotations

import re

from harness import node, run_cluster_playbook, swarm_nodes


def test_host_of_another_swarm_is_refused_then_rejoins_when_forced(inventory, tmp_path):
    spare = node("node3")
    assert "node3" not in swarm_nodes(), "runs after the scale-in test"
    spare.check_output("docker swarm init --advertise-addr 127.0.0.1")
    foreign_id = spare.check_output("docker info --format '{{.Swarm.NodeID}}'")
    inventory["managers"]["hosts"]["node3"] = {}

    refused = run_cluster_playbook(inventory, tmp_path)

    assert refused.rc != 0
    assert "host node3: it is already in another swarm" in refused.output
    assert "swarm_force_rejoin: true" in refused.output
    assert spare.check_output("docker info --format '{{.Swarm.NodeID}}'") == foreign_id
    assert "node3" not in swarm_nodes()

    inventory["managers"]["hosts"]["node3"] = {"swarm_force_rejoin": True}
    forced = run_cluster_playbook(inventory, tmp_path)

    assert forced.rc == 0
    assert "2 managers (node0, node3)" in forced.output  # the even-managers warning
    nodes = swarm_nodes()
    assert nodes["node3"]["Spec"]["Role"] == "manager"
    assert nodes["node3"]["ManagerStatus"]["Reachability"] == "reachable"
    assert spare.check_output("docker info --format '{{.Swarm.NodeID}}'") != foreign_id


def test_scale_in_of_a_manager_demotes_it_first(inventory, tmp_path):
    assert swarm_nodes()["node3"]["Spec"]["Role"] == "manager", "runs after the forced rejoin"
    inventory["managers"]["hosts"]["node3"] = {"swarm_node_state": "absent"}

    run = run_cluster_playbook(inventory, tmp_path)

    assert run.rc == 0
    assert "TASK [torchswarm.ddp.swarm : Demote a manager that is to be removed]" in run.output
    # Ansible names the container it reached the delegate through: [node3 -> node0(cluster-node0)].
    assert re.search(r"changed: \[node3 -> node0(\(\S+\))?\]", run.output)
    nodes = swarm_nodes()
    assert sorted(nodes) == ["node0", "node1", "node2"]
    assert nodes["node0"]["ManagerStatus"]["Leader"] is True
