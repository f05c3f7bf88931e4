"""Checks that span the whole inventory, which no single host's argument spec can make.

Everything here is pure: plain data in, messages out. The ``validate_inventory`` module and the
unit tests are its only callers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import check_daemon_options
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import (
    assign_ranks,
    check_job,
    check_secret_names,
    host_path_errors,
    is_ip_address,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import (
    Job,
    from_variables,
    validated,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._package_pins import problems as pin_problems
from ansible_collections.torchswarm.ddp.plugins.module_utils._script_configs import check_script_files
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_settings import problems as swarm_problems

PRESENT = "present"
ABSENT = "absent"


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The manager every play talks to: the first of 'managers' that stays and answers.
    manager: str = ""
    # Hosts marked absent that do not answer: removed through the manager, never reached.
    gone: list[str] = field(default_factory=list)


def manager_to_talk_to(managers: Iterable[str], nodes: Mapping[str, Mapping[str, object]]) -> str:
    """The manager every play talks to, the one rule for site.yml (the validate role) and for the
    playbooks that only talk to the swarm (reachable_manager.yml): the first of ``managers``, in
    inventory order, that stays (``state`` present) and answers (``reachable``, default true);
    '' when none does."""
    for host in managers:
        node = nodes.get(host, {})
        if str(node.get("state", PRESENT)) == PRESENT and node.get("reachable", True):
            return host
    return ""


def check_subnet(value: str) -> str | None:
    """Return why ``value`` is not a usable network in CIDR form, or None when it is."""
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return str(exc)
    if "/" not in value:
        return "a prefix length is required (for example 10.42.0.0/16)"
    return None


# The roles' whole-number settings by how their names end: the range each must be in. A type
# check passes -5 seconds or an MTU of 100000; these are refused before any host changes.
NUMBER_RANGES = (
    ("_mtu", 68, 65535),  # 0: Docker's choice
    ("_port", 1, 65535),
    ("_timeout", 1, None),
    ("_limit", 1, None),
    ("_interval", 1, None),
    ("_every", 1, None),
    ("_max", 1, None),
    ("_epochs", 1, None),
    ("_ratio", 1, None),  # a fraction: job_straggler_ratio
)


def number_settings(variables: Mapping[str, object]) -> dict[str, object]:
    """The roles' number settings among a host's variables: network_, image_ and job_ names with
    a NUMBER_RANGES ending (only their values are read: no secret is passed on)."""
    ends = tuple(end for end, _low, _high in NUMBER_RANGES)
    return {
        name: variables[name]
        for name in variables
        if name.startswith(("network_", "image_", "job_")) and name.endswith(ends)
    }


def number_problems(numbers: Mapping[str, object]) -> list[str]:
    """Why these settings (variable -> value, from the inventory) are out of their range."""
    problems = []
    for variable, value in sorted(numbers.items()):
        bounds = next(((low, high) for end, low, high in NUMBER_RANGES if variable.endswith(end)), None)
        try:
            number = float(str(value))
        except ValueError:
            continue  # the argument spec check names the type
        if bounds is None or (variable.endswith("_mtu") and number == 0):
            continue
        low, high = bounds
        if number < low or (high is not None and number > high):
            wanted = f"between {low} and {high}" if high is not None else f"at least {low}"
            problems.append(f"{variable} is {value}; it must be {wanted}")
    return problems


def check_inventory(
    managers: Iterable[str],
    workers: Iterable[str],
    nodes: Mapping[str, Mapping[str, object]],
    network_subnet: str | None = None,
    image: str | None = None,
    job: Mapping[str, object] | None = None,
    secret_names: Iterable[str] = (),
    script_files: Iterable[str] = (),
    data_digest: str = "",
    swarm_cert_expiry: str = "",
    numbers: Mapping[str, object] | None = None,
) -> Report:
    """Check group membership and per-node facts across hosts.

    ``managers`` and ``workers`` are the inventory groups, in inventory order; the first manager
    that stays and answers is ``Report.manager``, which initialises the swarm, creates the overlay
    network and deploys the job. ``nodes`` maps every host of both groups to the values that
    matter here: ``hostname`` (what the node will be called in the swarm), ``advertise_addr``,
    ``state`` (``present`` or ``absent``, for scale-in), ``reachable`` (whether it answered,
    default true) and ``unreachable_msg``, for training ``training`` (bool), ``node_rank`` and
    ``nproc_per_node``, ``daemon_options`` (docker_daemon_options), ``pins`` (docker_version and
    nvidia_toolkit_version, by name) and ``docker_drift`` (the engine's packages installed at
    another version than docker_version, warned about), ``job`` (the job options
    set for the host, whose types are checked) and ``paths`` (host_state's read of the job's host
    path mounts there, which each training host must have). A host marked absent that
    does not answer is only listed in ``Report.gone``; a present one that does not answer is an
    error. ``network_subnet``, ``image`` (image_name, which job_image defaults to), ``job`` (the
    ``job_*`` variables that are set), ``secret_names`` (the names of job_secrets) and
    ``script_files`` (the paths of job_script_src's files) are the first manager's;
    ``data_digest``, job_data_src's, when a dataset is staged; ``swarm_cert_expiry`` the first
    manager's too, as are ``numbers``, the roles' number settings (NUMBER_RANGES). A
    node's ``swarm_locked`` (its manager locked, as autolock leaves it after
    Docker restarted) needs its ``unlock_key`` (whether swarm_unlock_key is given).
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

    def state(host: str) -> str:
        return str(nodes.get(host, {}).get("state", PRESENT))

    def answers(host: str) -> bool:
        return bool(nodes.get(host, {}).get("reachable", True))

    present_managers = [h for h in managers if state(h) == PRESENT]
    report.gone = [h for h in dict.fromkeys(managers + workers) if state(h) == ABSENT and not answers(h)]
    for host in dict.fromkeys(managers + workers):
        if state(host) == PRESENT and not answers(host):
            why = nodes[host].get("unreachable_msg") or "unreachable"
            report.errors.append(
                f"host {host}: it does not answer ({why}); bring it back, or set swarm_node_state: absent "
                "for it to be removed from the swarm through a manager without reaching it"
            )
    if not managers:
        report.errors.append("the 'managers' group is empty: at least one host must be a swarm manager")
    else:
        report.manager = manager_to_talk_to(managers, nodes)
        if not present_managers:
            report.errors.append(
                f"every host of 'managers' ({', '.join(managers)}) has swarm_node_state 'absent'; "
                "the swarm needs a manager that stays"
            )
    if managers and len(present_managers) % 2 == 0 and present_managers:
        report.warnings.append(
            f"{len(present_managers)} managers ({', '.join(present_managers)}): an even "
            "number of managers tolerates no more failures than one fewer; use an odd number "
            "to keep raft quorum"
        )
    staying = [h for h in dict.fromkeys(managers + workers) if state(h) == PRESENT]
    if len(present_managers) == 1 and len(staying) > 1:
        report.warnings.append(
            f"one manager ({present_managers[0]}): it is a single point of failure for training; if "
            "its host dies the swarm cannot reschedule the job's rendezvous service or restart ranks. "
            "Three managers survive the loss of any one host"
        )

    for host in staying:
        if nodes[host].get("swarm_locked") and not nodes[host].get("unlock_key"):
            report.errors.append(
                f"host {host}: its swarm manager is locked (autolock, and Docker restarted there); "
                "give swarm_unlock_key (what `docker swarm unlock-key -q` printed, kept in a vault) "
                "for the run to unlock it"
            )

    # The job, network and swarm variables are read from the first manager's inventory variables.
    first = managers[0] if managers else ""
    if managers:
        report.errors += [f"host {first}: {problem}" for problem in swarm_problems(swarm_cert_expiry)]
        report.errors += [f"host {first}: {problem}" for problem in number_problems(numbers or {})]
    if managers and network_subnet:
        why = check_subnet(network_subnet)
        if why:
            report.errors.append(f"host {first}: network_subnet '{network_subnet}' is not a network: {why}")

    seen_hostnames: dict[str, str] = {}
    seen_addrs: dict[str, str] = {}
    for host in list(dict.fromkeys(managers + workers)):
        node = nodes.get(host, {})
        if node.get("state", PRESENT) != PRESENT:
            continue
        hostname = str(node.get("hostname") or "")
        if not hostname:
            report.errors.append(
                f"host {host}: its hostname (ansible_facts.nodename) is empty; placement constraints need it"
            )
        elif hostname in seen_hostnames:
            report.errors.append(
                f"host {host}: its hostname '{hostname}' (ansible_facts.nodename) is also the "
                f"hostname of {seen_hostnames[hostname]}; swarm placement by node.hostname "
                "needs unique hostnames"
            )
        else:
            seen_hostnames[hostname] = host

        for problem in check_daemon_options(node.get("daemon_options") or {}):
            report.errors.append(f"host {host}: docker_daemon_options: {problem}")
        pins = node.get("pins") or {}
        for variable, version in pins.items():
            report.errors.extend(f"host {host}: {problem}" for problem in pin_problems(variable, version))
        if node.get("docker_drift"):
            installed = ", ".join(f"{name} {version}" for name, version in node["docker_drift"].items())
            report.warnings.append(
                f"host {host}: {installed} installed, and docker_version pins {pins.get('docker_version')}; "
                "this run leaves it as it is (an upgrade restarts Docker, which would stop the host's "
                f"ranks). ansible-playbook maintenance.yml -l {host} -e maintenance_upgrade=true upgrades "
                "it while the job trains on without the host"
            )
        report.errors.extend(f"host {host}: {e}" for e in validated(node.get("job") or {})[1])

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
        _unused, rank_errors = assign_ranks(training, prefix="job_")
        # Hostnames were checked above, for every node.
        report.errors.extend(e for e in rank_errors if "hostname" not in e)
    typed, type_errors = _typed_job(image, job or {}, data_digest)
    for node in training:
        if typed and node.get("reachable", True):
            problems = host_path_errors(typed, node.get("paths") or {})
            report.errors.extend(f"host {node['name']}: {e}" for e in problems)
    if managers and (image is not None or job or secret_names or script_files):
        image_given = image is not None or (job or {}).get("job_image") is not None
        errors = _job_errors(typed, type_errors, image_given, secret_names, script_files)
        if (job or {}).get("job_image") is None:
            # The job's image is the image role's: name the variable the user set.
            errors = [e.replace("job_image '", "image_name '", 1) for e in errors]
        report.errors.extend(f"host {first}: {e}" for e in errors)
    # The first manager's job options are checked per host and again as the job's.
    report.errors = list(dict.fromkeys(report.errors))
    return report


def _typed_job(
    image: str | None, variables: Mapping[str, object], data_digest: str = ""
) -> tuple[Job | None, list[str]]:
    """The job these job_* variables make (job_image defaulting to ``image``, the image role's
    image_name), or None and why their types do not pass."""
    given = from_variables(variables)
    if image is not None:
        given.setdefault("image", image)
    options, errors = validated(given)
    if errors:
        return None, errors
    name = {"name": str(variables["job_name"])} if "job_name" in variables else {}
    return Job(**name, data_digest=data_digest, **{**options, "image": options["image"] or ""}), []


def _job_errors(
    job: Job | None,
    type_errors: list[str],
    image_given: bool,
    secret_names: Iterable[str],
    script_files: Iterable[str],
) -> list[str]:
    """What the stack module would refuse in the job (_typed_job's), before any host changes;
    without an image given, what it says of the empty image is left out."""
    if job is None:
        return type_errors  # the checks below need values of the right types
    errors = check_job(job, [])
    if not image_given:
        errors = [e for e in errors if not e.startswith("job_image")]
    errors += check_script_files(dict.fromkeys(script_files, ""), job.script)
    return errors + check_secret_names(secret_names, job)
