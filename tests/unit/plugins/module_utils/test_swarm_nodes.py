from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_nodes import (
    HOST_LABEL,
    node_ids_of_hosts,
    spec_changes,
)


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


WORKER = {"ID": "id1", "Spec": {"Role": "worker", "Labels": {"rack": "a", HOST_LABEL: "node1", "admin": "x"}}}


@pytest.mark.parametrize(
    ("role", "labels", "absent", "changes"),
    [
        ("worker", {"rack": "a", HOST_LABEL: "node1"}, [], []),
        ("worker", {}, [], []),  # merged: labels set by others stay
        ("manager", {"rack": "a"}, [], ["role worker -> manager"]),
        ("worker", {"rack": "b"}, [], ["label rack=b"]),
        ("worker", {"gpu": 2}, [], ["label gpu=2"]),
        ("worker", {}, ["admin", "never-set"], ["label admin removed"]),
    ],
    ids=["as-wanted", "nothing-wanted", "promote", "relabel", "new-label-as-text", "remove"],
)
def test_a_nodes_role_and_labels_are_set_only_when_they_differ(role, labels, absent, changes):
    assert spec_changes([WORKER], "id1", role, labels, absent) == changes


def test_a_node_missing_from_the_list_needs_setting():
    assert spec_changes([WORKER], "id9", "worker", {}) == ["node id9 is not in the node list"]
    assert spec_changes([], "", "worker", {}) == ["node (none) is not in the node list"]
