"""What a rank's container got, checked from inside it before torchrun starts: the swarm may drop
or change what the stack asked for (a 64 MB /dev/shm, ulimits on a remote deploy, a GPU reserved
but not visible), and nothing else would say so until a run fails or crawls.

The launcher prints one JSON record per host (``{"event": "host_check", ...}``) that the wait
shows as one line, and a line per warning. A reserved GPU that is not visible refuses the job:
it would fail later anyway. ``facts`` reads the container; ``verdict`` is pure.
"""

from __future__ import annotations

import os
import resource
import socket
from collections.abc import Mapping
from typing import Any

SHM_DIR = "/dev/shm"
SHM_ENOUGH = 512 << 20  # DataLoader workers hand batches over through /dev/shm
# Sockets to every peer and the descriptors DataLoader workers share batches by: 1024, many
# distributions' default, runs out; a few thousand is plenty.
NOFILE_ENOUGH = 8192
UNLIMITED = resource.RLIM_INFINITY
# The swarm sets DOCKER_RESOURCE_<KIND> to the generic resources it reserved for the task.
RESERVED_GPUS = "DOCKER_RESOURCE_GPU"


def _mib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"


def _limit(value: int) -> str:
    return "unlimited" if value == UNLIMITED else str(value)


def facts(environ: Mapping[str, str], visible_gpus: int, cuda_build: bool) -> dict[str, Any]:
    """What this container has: /dev/shm's size, the memlock and open-files soft limits, the
    GPUs reserved for it and the ones torch sees (``cuda_build``: whether this torch can see
    any), and the socket interface the launcher chose."""
    try:
        stat = os.statvfs(SHM_DIR)
        shm = stat.f_blocks * stat.f_frsize
    except OSError:
        shm = 0
    reserved = [g for g in environ.get(RESERVED_GPUS, "").split(",") if g]
    return {
        "host": environ.get("TORCHSWARM_NODE") or socket.gethostname(),
        "shm_bytes": shm,
        "memlock": resource.getrlimit(resource.RLIMIT_MEMLOCK)[0],
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "gpus_reserved": len(reserved),
        "gpus_visible": visible_gpus,
        "cuda_build": cuda_build,
        "interface": environ.get("NCCL_SOCKET_IFNAME") or environ.get("GLOO_SOCKET_IFNAME") or "",
    }


def verdict(found: Mapping[str, Any]) -> tuple[str, list[str], str | None]:
    """(one line of what the host has, its warnings, why the job cannot run here or None)."""
    line = (
        f"/dev/shm {_mib(found['shm_bytes'])}, memlock {_limit(found['memlock'])}, "
        f"open files {_limit(found['nofile'])}, GPUs {found['gpus_visible']} visible"
        + (f" of {found['gpus_reserved']} reserved" if found["gpus_reserved"] else "")
        + (f", interface {found['interface']}" if found["interface"] else "")
    )
    warnings = []
    if found["shm_bytes"] < SHM_ENOUGH:
        warnings.append(
            f"/dev/shm is {_mib(found['shm_bytes'])}: DataLoader workers fail with bus errors on "
            f"large batches (job_shm_size, at least {_mib(SHM_ENOUGH)})"
        )
    if found["nofile"] != UNLIMITED and found["nofile"] < NOFILE_ENOUGH:
        warnings.append(f"open files are limited to {found['nofile']}: many workers or peers run out")
    if found["gpus_visible"] and found["memlock"] != UNLIMITED:
        warnings.append(f"memlock is {found['memlock']}, not unlimited: NCCL over InfiniBand may fail")
    refused = None
    if found["gpus_reserved"] and not found["cuda_build"]:
        warnings.append(
            f"the image's torch is a CPU build: the {found['gpus_reserved']} reserved GPU(s) go unused"
        )
    elif found["gpus_reserved"] and found["gpus_visible"] < found["gpus_reserved"]:
        refused = (
            f"the swarm reserved {found['gpus_reserved']} GPU(s) for this rank but "
            f"{found['gpus_visible']} are visible: the NVIDIA runtime is not the engine's default"
            " (the nvidia role sets it), or the driver is not loaded"
        )
    return line, warnings, refused


def record(found: Mapping[str, Any]) -> dict[str, Any]:
    """The record the launcher prints: the facts, the line and the warnings."""
    line, warnings, refused = verdict(found)
    return {"event": "host_check", **found, "line": line, "warnings": warnings, "refused": refused}
