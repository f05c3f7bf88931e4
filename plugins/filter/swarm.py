"""Filters for the swarm role; the logic lives in module_utils/swarm_nodes.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.swarm_nodes import node_ids_of_hosts


def swarm_node_ids(nodes, hosts):
    return node_ids_of_hosts(nodes or [], hosts or [])


class FilterModule:
    def filters(self):
        return {"swarm_node_ids": swarm_node_ids}
