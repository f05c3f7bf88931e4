"""Filters for the preflight role; the logic lives in module_utils/_preflight.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._preflight import node_problems


def preflight_problems(checks):
    return node_problems(checks or {})


class FilterModule:
    def filters(self):
        return {"preflight_problems": preflight_problems}
