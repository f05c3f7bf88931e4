"""Filters for the docker and nvidia roles; the logic lives in module_utils/_daemon_config.py."""

from __future__ import annotations

import json

from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import unchanged


def daemon_config_unchanged(state, owner, options):
    # As the JSON they become: the merge copies values, and a copy of Ansible's lazy containers
    # copies their templar too (a deprecation warning on ansible-core 2.21).
    return unchanged(state, owner, json.loads(json.dumps(options or {})))


class FilterModule:
    def filters(self):
        return {"daemon_config_unchanged": daemon_config_unchanged}
