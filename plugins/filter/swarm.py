"""Filters for the swarm role; the logic lives in module_utils/_swarm_nodes.py, swarm_certs.py and
swarm_settings.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _swarm_certs as swarm_certs,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _swarm_settings as swarm_settings,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_nodes import (
    node_ids_of_hosts,
    spec_changes,
)


def swarm_node_ids(nodes, hosts):
    return node_ids_of_hosts(nodes or [], hosts or [])


def swarm_node_changes(nodes, node_id, role, labels=None, labels_absent=None):
    return spec_changes(nodes or [], node_id or "", role, labels or {}, labels_absent or [])


def swarm_cert_report(reads, now, warn_days=swarm_certs.WARN_DAYS):
    return swarm_certs.report(reads or {}, now, int(warn_days))


def swarm_settings_changes(swarm, cert_expiry=None, autolock=None):
    return swarm_settings.changes(swarm or {}, cert_expiry or "", autolock)


class FilterModule:
    def filters(self):
        return {
            "swarm_node_ids": swarm_node_ids,
            "swarm_node_changes": swarm_node_changes,
            "swarm_cert_report": swarm_cert_report,
            "swarm_settings_changes": swarm_settings_changes,
        }
