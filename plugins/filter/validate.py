"""Filters for the validate role; the logic lives in module_utils/inventory.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.inventory import number_settings


def validate_number_settings(variables):
    return number_settings(variables or {})


class FilterModule:
    def filters(self):
        return {"validate_number_settings": validate_number_settings}
