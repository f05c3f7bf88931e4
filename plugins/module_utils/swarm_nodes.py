"""Which swarm nodes are which inventory hosts, from the manager's node list alone.

Pure: ``docker node inspect`` dicts in, node IDs out. A host that is down cannot say its own
node ID, so the swarm role labels every node with its inventory hostname when it joins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

HOST_LABEL = "io.torchswarm.inventory-host"


def node_ids_of_hosts(nodes: Iterable[Mapping[str, Any]], hosts: Iterable[str]) -> list[str]:
    """IDs of the nodes that carry one of ``hosts`` as their HOST_LABEL; for a host that no node
    labels (it joined before the label existed), the unlabelled nodes with that hostname."""
    nodes = list(nodes)

    def label(node: Mapping[str, Any]) -> str | None:
        return ((node.get("Spec") or {}).get("Labels") or {}).get(HOST_LABEL)

    found: list[str] = []
    for host in dict.fromkeys(hosts):
        labelled = [n["ID"] for n in nodes if label(n) == host]
        found += labelled or [
            n["ID"] for n in nodes if not label(n) and (n.get("Description") or {}).get("Hostname") == host
        ]
    return found
