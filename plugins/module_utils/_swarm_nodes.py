"""Which swarm nodes are which inventory hosts, and what a node lacks, from the manager's node
list alone.

Pure: ``docker node inspect`` dicts in, node IDs and differences out. A host that is down cannot
say its own node ID, so the swarm role labels every node with its inventory hostname when it
joins.
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


def spec_changes(
    nodes: Iterable[Mapping[str, Any]],
    node_id: str,
    role: str,
    labels: Mapping[str, str],
    labels_absent: Iterable[str] = (),
) -> list[str]:
    """What setting ``role`` and merging ``labels`` (removing ``labels_absent``) would change on
    the node ``node_id``; empty when it has them already, so the swarm role asks the manager
    for nothing more."""
    node = next((n for n in nodes if n.get("ID") == node_id), None)
    if node is None:
        return [f"node {node_id or '(none)'} is not in the node list"]
    spec = node.get("Spec") or {}
    have = spec.get("Labels") or {}
    changes = [f"role {spec.get('Role')} -> {role}"] if spec.get("Role") != role else []
    changes += [f"label {k}={v}" for k, v in labels.items() if have.get(k) != str(v)]
    changes += [f"label {k} removed" for k in labels_absent if k in have]
    return changes
