from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.swarm_nodes import HOST_LABEL, node_ids_of_hosts


def swarm_node(node_id: str, hostname: str, host_label: str | None = None) -> dict:
    labels = {HOST_LABEL: host_label} if host_label else {}
    return {"ID": node_id, "Spec": {"Labels": labels}, "Description": {"Hostname": hostname}}


def test_hosts_are_found_by_their_label_first_and_by_hostname_without_one():
    nodes = [
        swarm_node("id0", "node0", "node0"),
        swarm_node("id1", "ip-10-0-0-11", "gpu-a"),  # inventory name differs from the hostname
        swarm_node("id2", "old-node"),  # joined before the label existed
        swarm_node("id3", "gpu-a"),  # has that hostname, but another node carries the label
    ]
    assert node_ids_of_hosts(nodes, ["gpu-a"]) == ["id1"]
    assert node_ids_of_hosts(nodes, ["old-node"]) == ["id2"]
    assert node_ids_of_hosts(nodes, ["ip-10-0-0-11"]) == []  # the label wins over the hostname
    assert node_ids_of_hosts(nodes, []) == []
