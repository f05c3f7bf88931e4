"""Filters for the docker and nvidia roles; the logic lives in module_utils/daemon_config.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils.daemon_config import unchanged


def daemon_config_unchanged(state, owner, options):
    return unchanged(state, owner, options or {})


class FilterModule:
    def filters(self):
        return {"daemon_config_unchanged": daemon_config_unchanged}
