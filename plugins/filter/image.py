"""Filters for the image role; the logic lives in module_utils/_fanout.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._engine_push import registry_of
from ansible_collections.torchswarm.ddp.plugins.module_utils._fanout import chain_after, fanout_rounds


def image_fanout_rounds(missing, holders, plan="chain"):
    return fanout_rounds(missing or [], holders or [], plan=plan)


def fanout_chain_after(round_, host):
    return chain_after(dict(round_ or {}), host)


class FilterModule:
    def filters(self):
        return {
            "image_fanout_rounds": image_fanout_rounds,
            "image_registry": registry_of,
            "fanout_chain_after": fanout_chain_after,
        }
