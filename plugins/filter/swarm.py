"""Filters for the swarm role; the logic lives in module_utils/swarm_nodes.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.swarm_nodes import (
    node_ids_of_hosts,
    spec_changes,
)


def swarm_node_ids(nodes, hosts):
    return node_ids_of_hosts(nodes or [], hosts or [])


def swarm_node_changes(nodes, node_id, role, labels=None, labels_absent=None):
    return spec_changes(nodes or [], node_id or "", role, labels or {}, labels_absent or [])


class FilterModule:
    def filters(self):
        return {"swarm_node_ids": swarm_node_ids, "swarm_node_changes": swarm_node_changes}
