"""Everything the training stack refuses, checked before anything is deployed.

Pure: a job's options, its nodes from host vars and what the swarm says of them in; the job and
its nodes in rank order out, or every problem at once, each naming the host and the variable.
The ``training_stack`` module (all of it) and ``validate_inventory`` (what needs no swarm) call it.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import overlay_gpu_engine_error
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import Job
from ansible_collections.torchswarm.ddp.plugins.module_utils._script_configs import check_script_files
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    RESERVED_TARGETS,
    Node,
    mount_kind,
    mount_read_only,
    service_name,
    size_bytes,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_secrets import SALT_CHARS, secret_name

# docker/distribution's reference grammar, simplified: [registry[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
)
IMAGE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?$"
)
STACK_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$")
# A Go duration as the swarm reads restart delays and grace periods: 10s, 1m30s, 500ms.
DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Docker's volume names.
VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class StackError(ValueError):
    """Bad input; ``errors`` holds one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            "The training stack has problems; nothing was deployed:\n" + "\n".join(f"- {e}" for e in errors)
        )
        self.errors = errors


def checked_job(
    job: Job,
    nodes: Iterable[Mapping[str, Any]],
    swarm_gpus: Mapping[str, int],
    engine_version: str,
    secret_names: Iterable[str] = (),
    script_files: Mapping[str, str] | None = None,
) -> list[Node]:
    """The job's nodes in rank order, after every check; raises StackError naming every problem.

    ``nodes``: from host vars (see assign_ranks); ``swarm_gpus``: every swarm node's hostname and
    the GPUs it advertises; ``engine_version``: the manager's Docker Engine.
    """
    ranked, errors = assign_ranks([{**n, "gpus": swarm_gpus.get(n["hostname"], 0)} for n in nodes])
    errors += check_job(job, ranked, swarm_gpus)
    errors += check_secret_names(secret_names, job)
    errors += check_script_files(script_files or {}, job.script)
    if job.network_mode == "overlay" and any(n.gpus for n in ranked):
        why = overlay_gpu_engine_error(engine_version)
        errors += [why] if why else []
    if errors:
        raise StackError(errors)
    return ranked


def image_name_error(image: str) -> str | None:
    """Why ``image`` is not a Docker image reference, or None when it is one."""
    if not image:
        return "it is empty"
    if not IMAGE_RE.match(image):
        return "it is not [registry/]name[:tag][@sha256:digest] in lowercase"
    return None


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def assign_ranks(nodes: Iterable[Mapping[str, Any]], prefix: str = "") -> tuple[list[Node], list[str]]:
    """Nodes from host vars (``name``, ``hostname``, optional ``node_rank``, ``nproc_per_node``,
    ``addr``, ``gpus``, ``image_id``), in inventory order; without ``node_rank`` anywhere, ranks
    follow that order. ``nproc_per_node`` defaults to the node's GPU count, or 1 without GPUs.

    Returns the nodes sorted by rank and the errors, each naming the host and the variable
    (``prefix`` before node_rank and nproc_per_node: the inventory's are job_node_rank, ...).
    """
    raw = list(nodes)
    errors: list[str] = []
    if not raw:
        return [], ["no training nodes: at least one host must run the job"]
    with_rank = [n["name"] for n in raw if n.get("node_rank") is not None]
    if with_rank and len(with_rank) != len(raw):
        without = [n["name"] for n in raw if n.get("node_rank") is None]
        errors.append(
            f"{prefix}node_rank is set on {', '.join(with_rank)} but not on {', '.join(without)}: "
            "set it on every training node, or on none to number them in inventory order"
        )
        return [], errors

    result: list[Node] = []
    by_rank: dict[int, str] = {}
    by_hostname: dict[str, str] = {}
    by_service: dict[str, str] = {}
    for index, item in enumerate(raw):
        host = str(item["name"])
        rank = int(item["node_rank"]) if with_rank else index
        gpus = int(item.get("gpus") or 0)
        nproc = (gpus or 1) if item.get("nproc_per_node") is None else int(item["nproc_per_node"])
        hostname = str(item.get("hostname") or "")
        if rank < 0:
            errors.append(f"host {host}: {prefix}node_rank {rank} is negative")
        elif rank in by_rank:
            errors.append(
                f"host {host}: {prefix}node_rank {rank} is also the {prefix}node_rank of {by_rank[rank]}"
            )
        else:
            by_rank[rank] = host
        if nproc < 1:
            errors.append(f"host {host}: {prefix}nproc_per_node is {nproc}; it must be at least 1")
        elif gpus and nproc > gpus:
            errors.append(
                f"host {host}: {prefix}nproc_per_node {nproc} needs {nproc} GPUs (one per process), "
                f"but its swarm node advertises {gpus}"
            )
        if not hostname:
            errors.append(f"host {host}: its swarm hostname is empty")
        elif hostname in by_hostname:
            errors.append(
                f"host {host}: its swarm hostname '{hostname}' is also that of {by_hostname[hostname]}; "
                "one training service per swarm node"
            )
        else:
            by_hostname[hostname] = host
        service = service_name(host)
        if service in by_service:
            errors.append(f"host {host}: its service name '{service}' is also that of {by_service[service]}")
        else:
            by_service[service] = host
        result.append(
            Node(
                host,
                hostname,
                rank,
                nproc,
                str(item.get("addr") or ""),
                gpus,
                str(item.get("image_id") or ""),
            )
        )

    valid_ranks = sorted(r for r in by_rank if r >= 0)
    missing = sorted(set(range(len(raw))) - set(valid_ranks))
    if missing and not any("node_rank" in e for e in errors):
        errors.append(
            f"node_rank has a gap: {len(raw)} training nodes need ranks 0..{len(raw) - 1}, "
            f"and no host has node_rank {', '.join(map(str, missing))}"
        )
    return sorted(result, key=lambda n: n.node_rank), errors


def check_job(job: Job, nodes: list[Node], swarm_hostnames: Iterable[str] | None = None) -> list[str]:
    """Everything wrong with this job on these nodes (and, when given, this swarm) that its
    options' types and choices do not already say."""
    errors: list[str] = []
    why = image_name_error(job.image)
    if why:
        errors.append(f"job_image '{job.image}' is not a valid image name: {why}")
    if not STACK_NAME_RE.match(job.name):
        errors.append(f"job_name '{job.name}' may hold only letters, digits, '_' and '-'")
    for var, value in (
        ("job_epochs", job.epochs),
        ("job_snapshot_every", job.snapshot_every),
        ("job_batch_size", job.batch_size),
    ):
        if value < 1:
            errors.append(f"{var} is {value}; it must be at least 1")
    if not 0 < job.master_port < 65536:
        errors.append(f"job_master_port {job.master_port} is not a port number")
    for key in job.env:
        if not ENV_NAME_RE.match(str(key)):
            errors.append(f"job_env: '{key}' is not an environment variable name")
    for var, value in (
        ("job_restart_delay", job.restart_delay),
        ("job_stop_grace_period", job.stop_grace_period),
    ):
        if not DURATION_RE.match(value):
            errors.append(f"{var} '{value}' is not a duration such as 10s, 1m30s or 500ms")
    if job.master_addr and not (is_ip_address(job.master_addr) or HOSTNAME_RE.match(job.master_addr)):
        errors.append(f"job_master_addr '{job.master_addr}' is neither an IP address nor a hostname")
    errors += _strings_with_nul(job)
    errors += _size_errors(job)
    errors += mount_errors(job.mounts, job.data_target if job.data_digest else None)
    if job.data_dir and not _absolute(job.data_dir):
        errors.append(f"job_data_dir '{job.data_dir}' is not an absolute path on the hosts")
    if job.snapshot_dir and not _absolute(job.snapshot_dir):
        errors.append(f"job_snapshot_dir '{job.snapshot_dir}' is not an absolute path on the hosts")
    if job.snapshot_dir and job.snapshot_volume:
        errors.append("job_snapshot_dir and job_snapshot_volume are both set; snapshots go to one of them")
    if job.snapshot_keep < 1:
        errors.append(f"job_snapshot_keep is {job.snapshot_keep}; it must be at least 1")
    if job.network_mode == "host" and not job.master_addr and nodes and not nodes[0].addr:
        errors.append(
            f"host {nodes[0].name}: on the host network the master address is node rank 0's own "
            "address, and it has none; set job_master_addr"
        )
    errors += _mixed_images(job, nodes)
    if job.min_nodes is not None and nodes and not 1 <= job.min_nodes <= len(nodes):
        errors.append(
            f"job_min_nodes is {job.min_nodes}; it must be between 1 and the {len(nodes)} training hosts"
        )
    if job.peer_timeout < 1:
        errors.append(f"job_peer_timeout is {job.peer_timeout}; it must be at least 1 (seconds)")
    if job.cpus is not None and job.cpus < 0.01:
        errors.append(f"job_cpus is {job.cpus:g}; Docker's CPU limit is at least 0.01 (CPUs)")
    if job.start_attempts < 1:
        errors.append(f"job_start_attempts is {job.start_attempts}; it must be at least 1")
    for option in ("stall_timeout", "stall_restarts"):
        if getattr(job, option) < 0:
            errors.append(f"job_{option} is {getattr(job, option)}; it must be 0 or more")
    if swarm_hostnames is not None:
        members = sorted(set(swarm_hostnames))
        for node in nodes:
            if node.hostname not in members:
                errors.append(
                    f"host {node.name}: its swarm hostname '{node.hostname}' is not a node of the swarm "
                    f"(the swarm has {', '.join(members) or 'no nodes'}); "
                    "run the cluster playbook for it first"
                )
    return errors


def check_secret_names(names: Iterable[str], job: Job) -> list[str]:
    """Secret names become environment variables in every rank and parts of swarm secret names."""
    errors = []
    for name in names:
        if not ENV_NAME_RE.match(name):
            errors.append(f"job_secrets: '{name}' is not an environment variable name")
        elif name in job.env:
            errors.append(f"job_secrets: '{name}' is also a key of job_env; a variable has one source")
        elif len(secret_name(job.name, name, "0" * SALT_CHARS)) > 64:
            errors.append(
                f"job_secrets: '{name}' is too long with job_name '{job.name}' (64 characters in all)"
            )
    return errors


def _size_errors(job: Job) -> list[str]:
    errors = []
    if not _is_size(job.shm_size):
        errors.append(f"job_shm_size: '{job.shm_size}' is not a size such as 512m or 2g")
    if job.memlock not in (None, "", "unlimited") and not _is_size(job.memlock):
        errors.append(f"job_memlock: '{job.memlock}' is not a size such as 512m or 2g or unlimited")
    return errors


def _is_size(value: str) -> bool:
    try:
        size_bytes(value)
    except ValueError:
        return False
    return True


def _mixed_images(job: Job, nodes: list[Node]) -> list[str]:
    """Ranks running different code under one tag would train one model with two programs."""
    by_id: dict[str, list[str]] = {}
    for node in nodes:
        if node.image_id:
            by_id.setdefault(node.image_id, []).append(node.name)
    if len(by_id) < 2:
        return []
    found = "; ".join(f"{image_id[:19]} on {', '.join(names)}" for image_id, names in sorted(by_id.items()))
    return [
        f"job_image '{job.image}' is not the same image on every training node ({found}); run the image role"
    ]


def _strings_with_nul(job: Job) -> list[str]:
    """A NUL byte cannot reach a process's arguments or environment; Docker would fail mid-deploy."""
    found = [f"job_env {k}" for k, v in job.env.items() if "\0" in str(v)]
    found += ["job_trainer_args" for a in job.trainer_args if "\0" in a][:1]
    found += ["job_script_args" for a in job.script_args or () if "\0" in a][:1]
    return [f"{where}: holds a NUL byte, which no argument or environment variable can" for where in found]


def _absolute(path: object) -> bool:
    """An absolute path written the one way (no trailing '/', '.', '..' or '//'), not '/'."""
    return isinstance(path, str) and path.startswith("/") and path != "/" and posixpath.normpath(path) == path


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def mount_errors(mounts: Iterable[Mapping[str, Any]], data_target: str | None = None) -> list[str]:
    """What is wrong with job_mounts (their types already checked): targets that are not absolute
    or that collide with the image's working directory, the snapshots, /dev/shm, the secrets,
    the staged dataset's ``data_target`` (when one is staged) or each other, and sources and
    options that do not fit the mount's type."""
    errors: list[str] = []
    targets: list[tuple[int, str]] = []
    reserved = [(t, "the job's own") for t in RESERVED_TARGETS]
    if data_target is not None:
        clash = next((t for t, _unused in reserved if _nested(data_target, t)), None)
        if not _absolute(data_target):
            errors.append(f"job_data_target '{data_target}' is not an absolute path such as /data")
        elif clash:
            errors.append(f"job_data_target '{data_target}' collides with the job's own mount at {clash}")
        reserved.append((data_target, "job_data_target's"))
    for i, mount in enumerate(mounts):
        where = f"job_mounts[{i}]"
        kind, source, target = mount_kind(mount), mount.get("source"), mount.get("target")
        if not _absolute(target):
            errors.append(f"{where}: target '{target}' is not an absolute path such as /data")
        else:
            taken = [(t, f"job_mounts[{j}]") for j, t in targets] + reserved
            clash = next(((t, whose) for t, whose in taken if _nested(target, t)), None)
            if clash:
                errors.append(f"{where}: target '{target}' collides with {clash[1]} mount at {clash[0]}")
            targets.append((i, target))
        if kind == "bind" and not _absolute(source):
            errors.append(f"{where}: source '{source}' is not an absolute path on the hosts")
        if kind == "volume" and not (isinstance(source, str) and VOLUME_NAME_RE.match(source)):
            errors.append(f"{where}: source '{source}' is not a volume name (letters, digits, '_', '.', '-')")
        if kind == "tmpfs":
            if source:
                errors.append(f"{where}: a tmpfs has no source")
            if not (isinstance(mount.get("size"), str) and _is_size(mount["size"])):
                errors.append(f"{where}: a tmpfs needs a size such as 512m or 8g (size)")
            if mount.get("read_only"):
                errors.append(f"{where}: a read-only tmpfs would stay empty; leave read_only unset")
        elif mount.get("size") is not None:
            errors.append(f"{where}: size is for a tmpfs only")
        if kind != "volume" and mount.get("driver_opts"):
            errors.append(f"{where}: driver_opts are for a named volume only")
    return errors


def host_paths(variables: object) -> list[str]:
    """The host paths a job's variables name (job_mounts' host paths, job_snapshot_dir), as
    given: what each training host is asked about before anything changes. What is not well
    formed is left to the checks."""
    if not isinstance(variables, Mapping):
        return []
    mounts, snapshots = variables.get("job_mounts"), variables.get("job_snapshot_dir")
    paths = [
        m["source"]
        for m in (mounts if isinstance(mounts, list) else [])
        if isinstance(m, Mapping) and mount_kind(m) == "bind" and _absolute(m.get("source"))
    ]
    return paths + ([snapshots] if _absolute(snapshots) else [])


def host_path_errors(job: Job, paths: Mapping[str, Mapping[str, bool]]) -> list[str]:
    """What one training host lacks of the job's host paths; ``paths``: what host_state read of
    them there (exists, directory, readable, writable)."""
    # (variable, path, None when it is only read, else what the message adds when it cannot be written)
    wanted = [
        (
            f"job_mounts[{i}].source",
            m.get("source"),
            None if mount_read_only(m) else ", and read_only is false",
        )
        for i, m in enumerate(job.mounts)
        if mount_kind(m) == "bind"
    ]
    if job.snapshot_dir:
        wanted.append(("job_snapshot_dir", job.snapshot_dir, ""))
    errors = []
    for var, path, writes in wanted:
        if path not in paths:
            continue
        found, where = paths[path], f"{var} '{path}'"
        if not found.get("exists"):
            errors.append(f"{where} does not exist")
        elif not found.get("directory"):
            errors.append(f"{where} is not a directory")
        elif not found.get("readable"):
            errors.append(f"{where} is not readable")
        elif writes is not None and not found.get("writable"):
            errors.append(f"{where} is not writable{writes}")
    return errors
