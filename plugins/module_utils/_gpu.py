"""GPUs as the swarm schedules them: found with nvidia-smi, advertised as generic resources.

Swarm has no ``--gpus``. Each node lists its GPUs in daemon.json
(``"node-generic-resources": ["GPU=GPU-<uuid>", ...]``), a service reserves some with
``generic_resources`` of kind ``GPU``, and the swarm hands the chosen UUIDs to the task as
``DOCKER_RESOURCE_GPU``, which the NVIDIA runtime turns into the GPUs the container sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.compat.version import LooseVersion

# The kind must be the same everywhere: daemon.json, the service's reservation and the
# runtime's swarm-resource setting (DOCKER_RESOURCE_<KIND>, the nvidia role's
# nvidia_swarm_resource).
GPU_KIND = "GPU"

# `nvidia-smi -L`: "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3b9a...)". MIG devices are listed
# indented under their GPU ("  MIG 1g.10gb Device 0: (UUID: MIG-...)") and are not whole GPUs.
_GPU_LINE = re.compile(r"^GPU \d+: .*\(UUID: (GPU-[0-9A-Fa-f-]+)\)\s*$")


def gpu_uuids(nvidia_smi_list: str) -> list[str]:
    """The whole GPUs' UUIDs in ``nvidia-smi -L`` output, in its order."""
    return [m.group(1) for m in map(_GPU_LINE.match, nvidia_smi_list.splitlines()) if m]


def node_generic_resources(uuids: list[str]) -> list[str]:
    """daemon.json's ``node-generic-resources`` entries for these GPUs."""
    return [f"{GPU_KIND}={uuid}" for uuid in uuids]


def advertised_gpu_uuids(generic_resources: list[Mapping[str, Any]] | None) -> list[str]:
    """The GPUs an engine advertises by UUID (``docker info``'s ``GenericResources``)."""
    return [
        str(named["Value"])
        for named in ((r or {}).get("NamedResourceSpec") or {} for r in generic_resources or [])
        if named.get("Kind") == GPU_KIND and named.get("Value")
    ]


def advertised_gpus(node: Mapping[str, Any]) -> int:
    """How many GPUs a node (``docker node inspect``) offers the swarm."""
    resources = ((node.get("Description") or {}).get("Resources") or {}).get("GenericResources") or []
    count = 0
    for resource in resources:
        named = resource.get("NamedResourceSpec") or {}
        discrete = resource.get("DiscreteResourceSpec") or {}
        if named.get("Kind") == GPU_KIND:
            count += 1
        elif discrete.get("Kind") == GPU_KIND:
            count += int(discrete.get("Value", 0))
    return count


# Swarmkit before this rejected, again and again, every task that both reserved generic
# resources and joined an overlay network ("assigned node no longer meets constraints");
# fixed for Docker Engine 23.0.2 (moby/moby#44378). The check runs on the managers.
OVERLAY_GPU_MIN_ENGINE = "23.0.2"


def overlay_gpu_engine_error(engine_version: str) -> str | None:
    """Why GPU reservations on the overlay cannot work with this manager's Docker Engine, or None."""
    found = LooseVersion(engine_version.strip() or "unknown")
    if not isinstance(found.version[0], int):
        return None  # an engine we cannot read the version of: let it try
    if found >= LooseVersion(OVERLAY_GPU_MIN_ENGINE):
        return None
    return (
        f"GPU reservations on the overlay network need Docker Engine {OVERLAY_GPU_MIN_ENGINE} or later on "
        f"the managers; this manager runs {engine_version.strip()}, which rejects such tasks over and over "
        "(moby/moby#44378). Upgrade Docker (docker_package_source: docker), or set job_network_mode: host"
    )
