"""Whether one host may leave the swarm and the job for maintenance, and what it means for the
job: pure, from what a manager reads (``docker node inspect`` of every node, the job as
training_job_info sees it, the environment of the host's rank service). The maintenance role
names the host and fails on any refusal before anything changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._package_pins import upgrade_refusals

RUNNING = ("running", "recovering")


def quorum(managers: int) -> int:
    """The managers that must answer for the swarm to keep working (Raft's majority)."""
    return managers // 2 + 1


def environment(env: Sequence[str] | None) -> dict[str, str]:
    """A service's ``ContainerSpec.Env`` ("KEY=value" strings) as a mapping."""
    return dict(item.split("=", 1) for item in env or [] if "=" in item)


def rank_of(job: Mapping[str, Any], hostname: str) -> dict[str, Any] | None:
    """The job's rank pinned to the node ``hostname``, if the job is running and has one."""
    if job.get("state") not in RUNNING:
        return None
    return next((row for row in job.get("services") or [] if row.get("host") == hostname), None)


def _swarm_refusals(host: str, hostname: str, nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    me = [n for n in nodes if (n.get("Description") or {}).get("Hostname") == hostname]
    if not me:
        return [
            f"host {host}: no swarm node has the hostname {hostname!r}; it is not in the swarm (run site.yml)"
        ]
    if (me[0].get("Spec") or {}).get("Role") != "manager":
        return []
    managers = [n for n in nodes if (n.get("Spec") or {}).get("Role") == "manager"]
    if len(managers) == 1:
        return [f"host {host} is the swarm's only manager: without it the swarm stops (add managers first)"]
    answering = [n for n in managers if (n.get("ManagerStatus") or {}).get("Reachability") == "reachable"]
    left, needed = len(answering) - 1, quorum(len(managers))
    if left < needed:
        return [
            f"host {host}: without it {left} of the {len(managers)} managers answer, fewer than the "
            f"{needed} that keep the swarm's quorum"
        ]
    return []


def _job_refusals(
    host: str, job: Mapping[str, Any], row: Mapping[str, Any], env: Mapping[str, str]
) -> list[str]:
    name = str(row.get("service", "")).rpartition("_")[0] or "the job"
    if "TORCHSWARM_MIN_NODES" not in env:
        return [
            f"host {host} trains in job {name}, which is not elastic (job_network_mode host, or "
            "fewer than 3 hosts): its leaving would stop the job"
        ]
    # A host drained already (a run that failed after the drain) takes nothing more away.
    training = int(job.get("training_hosts") or 0)
    needed, left = int(env["TORCHSWARM_MIN_NODES"]), training - (row.get("state") == "running")
    if left < needed:
        return [
            f"host {host}: job {name} would train on {left} host(s) without it, fewer than its "
            f"job_min_nodes ({needed})"
        ]
    return []


def verdict(
    host: str,
    hostname: str,
    nodes: Sequence[Mapping[str, Any]],
    job: Mapping[str, Any],
    env: Sequence[str] | None,
    stop_job: bool = False,
    upgrade_pins: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """What stops ``host`` (swarm node ``hostname``) from leaving, one sentence each, and whether
    the job must be stopped first (``stop_job`` set, and only the job stood in the way).
    ``world`` is the job's ranks on hosts that are up (this one among them), the world size it
    grows back to once the host returns (0 when the host trains in no running job); ``image``,
    the job's image ID, which the host must hold before it returns. ``upgrade_pins``, when the
    built-in upgrade is asked for: the versions it installs (none set, or one malformed, refuses)."""
    row, env_map = rank_of(job, hostname), environment(env)
    # What refuses the host whatever becomes of the job.
    refused = _swarm_refusals(host, hostname, nodes)
    if upgrade_pins is not None:
        refused += upgrade_refusals(host, upgrade_pins)
    for_job = _job_refusals(host, job, row, env_map) if row else []
    stops_job = bool(for_job) and stop_job
    if for_job and not stop_job:
        for_job = [
            f"{reason}; set maintenance_stop_job: true to stop the job on purpose" for reason in for_job
        ]
    return {
        "refusals": refused + ([] if stops_job else for_job),
        "stops_job": stops_job and not refused,
        "world": sum(1 for r in job.get("services") or [] if not r.get("lost"))
        if row and not stops_job
        else 0,
        "service": str(row["service"]) if row else "",
        "image": env_map.get("TORCHSWARM_IMAGE_ID", "") if row else "",
    }
