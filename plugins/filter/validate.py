"""Filters for the validate role and the playbooks; the logic lives in module_utils/_inventory.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._inventory import (
    manager_to_talk_to,
    number_settings,
)


def validate_number_settings(variables):
    return number_settings(variables or {})


def swarm_manager(managers, nodes):
    return manager_to_talk_to(managers or [], nodes or {})


class FilterModule:
    def filters(self):
        return {"validate_number_settings": validate_number_settings, "swarm_manager": swarm_manager}
