"""Checks that span the whole inventory, which no single host's argument spec can make.

Everything here is pure: plain data in, messages out. The ``validate_inventory`` module and the
unit tests are its only callers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.torchswarm.ddp.plugins.module_utils.daemon_config import check_daemon_options
from ansible_collections.torchswarm.ddp.plugins.module_utils.stack import (
    Job,
    assign_ranks,
    check_job,
    check_secret_names,
    is_ip_address,
)

PRESENT = "present"
ABSENT = "absent"


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_subnet(value: str) -> str | None:
    """Return why ``value`` is not a usable network in CIDR form, or None when it is."""
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return str(exc)
    if "/" not in value:
        return "a prefix length is required (for example 10.42.0.0/16)"
    return None


def check_inventory(
    managers: Iterable[str],
    workers: Iterable[str],
    nodes: Mapping[str, Mapping[str, object]],
    network_subnet: str | None = None,
    image: str | None = None,
    job: Mapping[str, object] | None = None,
    secret_names: Iterable[str] = (),
) -> Report:
    """Check group membership and per-node facts across hosts.

    ``managers`` and ``workers`` are the inventory groups, in inventory order (the first manager
    initialises the swarm). ``nodes`` maps every host of both groups to the values that matter
    here: ``hostname`` (what the node will be called in the swarm), ``advertise_addr`` and
    ``state`` (``present`` or ``absent``, for scale-in), for training ``training`` (bool),
    ``node_rank`` and ``nproc_per_node``, and ``daemon_options`` (docker_daemon_options).
    ``network_subnet``, ``image``, ``job`` (the ``job_*`` variables that are set) and
    ``secret_names`` (the names of job_secrets) are the first manager's, the host that creates
    the overlay network and deploys the job.
    """
    managers = list(managers)
    workers = list(workers)
    report = Report()

    for host in managers:
        if host in workers:
            report.errors.append(
                f"host {host}: it is in both the 'managers' and the 'workers' group; "
                "a node has one role, keep it in one group"
            )

    present_managers = [h for h in managers if nodes.get(h, {}).get("state", PRESENT) == PRESENT]
    if not managers:
        report.errors.append("the 'managers' group is empty: at least one host must be a swarm manager")
    elif nodes.get(managers[0], {}).get("state", PRESENT) == ABSENT:
        report.errors.append(
            f"host {managers[0]}: swarm_node_state is 'absent' but it is the first host of "
            "'managers', which holds the swarm; list another manager first"
        )
    if managers and len(present_managers) % 2 == 0 and present_managers:
        report.warnings.append(
            f"{len(present_managers)} managers ({', '.join(present_managers)}): an even "
            "number of managers tolerates no more failures than one fewer; use an odd number "
            "to keep raft quorum"
        )

    if managers and network_subnet:
        why = check_subnet(network_subnet)
        if why:
            report.errors.append(
                f"host {managers[0]}: network_subnet '{network_subnet}' is not a network: {why}"
            )

    seen_hostnames: dict[str, str] = {}
    seen_addrs: dict[str, str] = {}
    for host in list(dict.fromkeys(managers + workers)):
        node = nodes.get(host, {})
        if node.get("state", PRESENT) != PRESENT:
            continue
        hostname = str(node.get("hostname") or "")
        if not hostname:
            report.errors.append(
                f"host {host}: its hostname (fact ansible_hostname) is empty; placement constraints need it"
            )
        elif hostname in seen_hostnames:
            report.errors.append(
                f"host {host}: its hostname '{hostname}' (fact ansible_hostname) is also the "
                f"hostname of {seen_hostnames[hostname]}; swarm placement by node.hostname "
                "needs unique hostnames"
            )
        else:
            seen_hostnames[hostname] = host

        for problem in check_daemon_options(node.get("daemon_options") or {}):
            report.errors.append(f"host {host}: docker_daemon_options: {problem}")

        addr = node.get("advertise_addr")
        if addr in (None, ""):
            report.errors.append(
                f"host {host}: swarm_advertise_addr is unset and the host has no default "
                "IPv4 address; set swarm_advertise_addr to the address other nodes reach it on"
            )
        elif not is_ip_address(str(addr)):
            report.errors.append(f"host {host}: swarm_advertise_addr '{addr}' is not an IP address")
        elif str(addr) in seen_addrs:
            report.errors.append(
                f"host {host}: swarm_advertise_addr '{addr}' is also the address of {seen_addrs[str(addr)]}"
            )
        else:
            seen_addrs[str(addr)] = host

    training = [
        {"name": host, **nodes[host]}
        for host in dict.fromkeys(managers + workers)
        if nodes.get(host, {}).get("state", PRESENT) == PRESENT and nodes[host].get("training", True)
    ]
    if training:
        _, rank_errors = assign_ranks(training)
        # Hostnames were checked above, for every node.
        report.errors.extend(e for e in rank_errors if "hostname" not in e)
    if managers and (image is not None or job or secret_names):
        report.errors.extend(f"host {managers[0]}: {e}" for e in _job_errors(image, job or {}, secret_names))
    return report


def _job_errors(image: str | None, variables: Mapping[str, object], secret_names: Iterable[str]) -> list[str]:
    """What the stack module would refuse in these job_* variables, before any host changes.
    Values of the wrong type are left to the roles' argument specs, which name them already."""
    fields = {f for f in Job.__dataclass_fields__ if f != "image"}
    values = {k.removeprefix("job_"): v for k, v in variables.items() if k.removeprefix("job_") in fields}
    for key in ("trainer_args", "script_args"):
        if isinstance(values.get(key), list):
            values[key] = tuple(str(a) for a in values[key])
    values = {k: v for k, v in values.items() if v is not None}
    try:
        job = Job(image="" if image is None else image, **values)
        errors = check_job(job, [])
    except (TypeError, ValueError, AttributeError):
        return []
    if image is None:
        errors = [e for e in errors if not e.startswith("job_image")]
    return errors + check_secret_names(secret_names, job)
