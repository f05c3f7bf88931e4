"""What is wrong with a node before a long run, from what the preflight role read on it.

Pure: the task results in, one sentence per problem out (the role names the host).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import advertised_gpu_uuids, gpu_uuids


def _docker_info(result: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The engine's info from community.docker.docker_host_info's result, or None and why not."""
    if result.get("failed") or not isinstance(result.get("host_info"), dict):
        reason = str(result.get("msg") or "no answer").strip()
        return None, f"Docker does not answer ({reason})"
    return result["host_info"], ""


def _swarm_status(nodes: list[Mapping[str, Any]], hostname: str) -> str:
    """The node's state as the managers see it (ready, down, ...) in community.docker.docker_node_info's
    nodes; '' when it is not listed."""
    for node in nodes:
        if (node.get("Description") or {}).get("Hostname") == hostname:
            return str((node.get("Status") or {}).get("State") or "")
    return ""


def node_problems(checks: Mapping[str, Any]) -> list[str]:
    """Every problem on one node.

    ``checks`` holds task results: ``docker_info`` (community.docker.docker_host_info),
    ``nvidia_smi`` (``nvidia-smi -L``), ``image_info`` (community.docker.docker_image_info of
    ``image``; skipped on nodes that do not train), ``swarm_nodes`` (a manager's
    community.docker.docker_node_info nodes, with the node's ``hostname``) and ``ports``
    (``wait_for`` results, ``item`` = [host, port]).
    """
    info, why = _docker_info(checks.get("docker_info") or {})
    if info is None:
        return [why]
    problems: list[str] = []
    state = (info.get("Swarm") or {}).get("LocalNodeState", "")
    status = _swarm_status(checks.get("swarm_nodes") or [], checks.get("hostname") or "")
    if state != "active":
        problems.append(f"not a swarm member (state '{state or 'unknown'}'); run site.yml")
    elif status and status != "ready":
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

    image = checks.get("image_info") or {}
    if not image.get("skipped") and not image.get("images"):
        problems.append(
            f"the training image {checks.get('image')} is not on this node; run site.yml (the image role)"
        )

    for port in checks.get("ports") or []:
        if "state" not in port:  # wait_for reports its state only when the port answered
            host, number = port["item"]
            why = (port.get("msg") or "no answer").strip()
            problems.append(f"cannot reach {host} on {number}/tcp ({why})")
    return problems
