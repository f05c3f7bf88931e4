"""What is wrong with a node before a long run, from what the preflight role read on it.

Pure: the task results in, one sentence per problem out (the role names the host).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils.gpu import advertised_gpu_uuids, gpu_uuids


def _docker_info(result: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """``docker info --format '{{json .}}'`` as a dict, or None and why not."""
    if result.get("rc", 1) != 0:
        reason = (result.get("stderr") or result.get("msg") or "no output").strip()
        return None, f"Docker does not answer ({reason})"
    try:
        return json.loads(result.get("stdout") or ""), ""
    except ValueError:
        return None, "Docker's info is not JSON"


def _swarm_status(view: str, hostname: str) -> str:
    """The node's status in ``docker node ls --format '{{.Hostname}} {{.Status}}'``."""
    for line in view.splitlines():
        name, _unused, status = line.partition(" ")
        if name == hostname:
            return status.strip()
    return ""


def node_problems(checks: Mapping[str, Any]) -> list[str]:
    """Every problem on one node.

    ``checks`` holds task results: ``docker_info`` (``docker info``), ``nvidia_smi``
    (``nvidia-smi -L``), ``image_inspect`` (``docker image inspect`` of ``image``; skipped on
    nodes that do not train), ``swarm_view`` (the first manager's ``docker node ls``, with the
    node's ``hostname``) and ``ports`` (``wait_for`` results, ``item`` = [host, port]).
    """
    info, why = _docker_info(checks.get("docker_info") or {})
    if info is None:
        return [why]
    problems: list[str] = []
    state = (info.get("Swarm") or {}).get("LocalNodeState", "")
    status = _swarm_status(checks.get("swarm_view") or "", checks.get("hostname") or "")
    if state != "active":
        problems.append(f"not a swarm member (state '{state or 'unknown'}'); run site.yml")
    elif status and status != "Ready":
        problems.append(f"the swarm sees it as {status}: the managers do not hear from it (7946/tcp+udp?)")

    smi = checks.get("nvidia_smi") or {}
    gpus = gpu_uuids(smi.get("stdout") or "") if smi.get("rc") == 0 else []
    if gpus and "nvidia" not in (info.get("Runtimes") or {}):
        problems.append(f"{len(gpus)} GPUs but no nvidia runtime in Docker; run site.yml (the nvidia role)")
    elif gpus and info.get("DefaultRuntime") != "nvidia":
        runtime = info.get("DefaultRuntime")
        problems.append(f"{len(gpus)} GPUs but the default runtime is {runtime}: swarm tasks would get none")
    # What the engine offers the swarm must be there: after a driver upgrade without a reboot, or
    # a GPU that fell off the bus, tasks would be handed GPUs that do not answer.
    missing = [uuid for uuid in advertised_gpu_uuids(info.get("GenericResources")) if uuid not in gpus]
    if missing and smi.get("rc") != 0:
        why = (smi.get("stderr") or smi.get("stdout") or smi.get("msg") or "no output").strip()
        problems.append(f"it advertises {len(missing)} GPU(s) to the swarm but nvidia-smi -L fails ({why})")
    elif missing:
        problems.append(
            f"it advertises GPU(s) to the swarm that nvidia-smi -L does not list: {', '.join(missing)} "
            "(gone from the bus, or the driver not loaded); mend it, then run site.yml to advertise "
            "the GPUs that are there"
        )

    image = checks.get("image_inspect") or {}
    if not image.get("skipped") and image.get("rc") != 0:
        problems.append(
            f"the training image {checks.get('image')} is not on this node; run site.yml (the image role)"
        )

    for port in checks.get("ports") or []:
        if "state" not in port:  # wait_for reports its state only when the port answered
            host, number = port["item"]
            why = (port.get("msg") or "no answer").strip()
            problems.append(f"cannot reach {host} on {number}/tcp ({why})")
    return problems
