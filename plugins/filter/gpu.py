"""Filters for the nvidia role; the logic lives in module_utils/_gpu.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import gpu_uuids, node_generic_resources


def nvidia_gpu_uuids(text):
    return gpu_uuids(text or "")


def swarm_gpu_resources(uuids):
    return node_generic_resources(list(uuids or []))


class FilterModule:
    def filters(self):
        return {"nvidia_gpu_uuids": nvidia_gpu_uuids, "swarm_gpu_resources": swarm_gpu_resources}
