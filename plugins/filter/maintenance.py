"""Filters for the maintenance role; the logic lives in module_utils/maintenance.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.maintenance import verdict


def maintenance_verdict(host, hostname, nodes, job, env=None, stop_job=False):
    return verdict(host, hostname, nodes or [], job or {}, env, bool(stop_job))


class FilterModule:
    def filters(self):
        return {"maintenance_verdict": maintenance_verdict}
