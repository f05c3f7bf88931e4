"""Filters for the maintenance role; the logic lives in module_utils/_maintenance.py."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.torchswarm.ddp.plugins.module_utils._maintenance import verdict


def maintenance_verdict(host, hostname, nodes, job, env=None, stop_job=False, upgrade_pins=None):
    # stop_job may come from -e as the text "true" or "false".
    return verdict(host, hostname, nodes or [], job or {}, env, boolean(stop_job, strict=True), upgrade_pins)


class FilterModule:
    def filters(self):
        return {"maintenance_verdict": maintenance_verdict}
