"""Render the training job's Docker stack from inventory host vars, and check it first.

Pure: plain data in, a stack (a dict that ``docker stack deploy`` reads as YAML) or error
messages out. The ``training_stack`` module, the ``validate_inventory`` module and the unit
tests are its callers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils.gpu import GPU_KIND

STACK_DIR = "/var/lib/torchswarm/stacks"

HASH_LABEL = "io.torchswarm.stack-hash"
RANK_LABEL = "io.torchswarm.node-rank"
# The swarm hostname a rank's service is pinned to: its rank is lost while that node is down.
HOST_LABEL = "io.torchswarm.hostname"
# The rendezvous store's service (torchswarm.store in the image), on the managers.
RENDEZVOUS_SERVICE = "rendezvous"
RENDEZVOUS_PORT = 29400
ROLE_LABEL = "io.torchswarm.role"
SNAPSHOT_DIR = "/snapshots"
WORKDIR = "/workspace"  # the bundled image's working directory, where torchrun starts the script
NETWORK_MODES = ("overlay", "host")

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
# What the stack module itself puts in every rank's environment; everything else came from
# job_env and is shown as HIDDEN in diffs and results.
OWN_ENV = (
    "NCCL_IB_DISABLE",
    "TORCHSWARM_GENERATION",
    "TORCHSWARM_IMAGE_ID",
    "TORCHSWARM_LAST_CALL",
    "TORCHSWARM_MAX_NODES",
    "TORCHSWARM_MIN_NODES",
    "TORCHSWARM_NODE",
    "TORCHSWARM_NODE_ADDR",
    "TORCHSWARM_NODE_ORDER",
    "TORCHSWARM_PEER_TIMEOUT",
    "TORCHSWARM_RENDEZVOUS",
    "TORCHSWARM_SECRETS",
    "TORCHSWARM_SNAPSHOT_DIR",
    "TORCHSWARM_SUBNET",
)
# The stack's hash, as the launcher in every task reads it: a completion record is this
# generation's only. Set after hashing, like the hash labels.
GENERATION_ENV = "TORCHSWARM_GENERATION"
HIDDEN = "<hidden>"
# Inside each task, swarm secrets are files here; the image's entrypoint exports them.
SECRETS_DIR = "/run/secrets"
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SIZE_RE = re.compile(r"^(\d+)([kmg]?)b?$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class StackError(ValueError):
    """Bad input; ``errors`` holds one message per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Node:
    """One training node: an inventory host and what its service runs."""

    name: str  # inventory hostname; the service is named after it
    hostname: str  # the swarm's node.hostname, for the placement constraint
    node_rank: int
    nproc_per_node: int = 1
    addr: str = ""  # address other nodes reach it on (the master address on the host network)
    gpus: int = 0  # GPUs its swarm node advertises; the service reserves one per process
    image_id: str = ""  # the ID of job_image on this node: a rebuilt image is a new deployment


@dataclass(frozen=True)
class Job:
    image: str
    name: str = "ddp"
    epochs: int = 10
    snapshot_every: int = 2
    batch_size: int = 32
    script: str = "training_code.py"
    trainer_args: tuple[str, ...] = ()
    # The script's whole argument list instead of the trainer's (the preflight's all-reduce).
    script_args: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    master_port: int = 12355
    master_addr: str = ""
    network: str = "ddp-net"
    network_mode: str = "overlay"
    subnet: str = ""
    # None: disabled on the overlay, where InfiniBand cannot be reached; NCCL's choice on the host network.
    nccl_ib_disable: bool | None = None
    # Locked memory for NCCL's InfiniBand/RoCE buffers: "unlimited", a size, or "" for Docker's
    # default. None: unlimited on the host network (where NCCL may use those NICs), else default.
    memlock: str | None = None
    snapshot_volume: str = ""
    shm_size: str = "1g"
    restart_delay: str = "10s"
    restart_max_attempts: int = 30
    stop_grace_period: str = "60s"
    # Elastic (on the overlay): the hosts the job needs to go on (None: N-1 from 3 hosts, else
    # N) and the seconds of silence after which a host is counted as lost.
    min_nodes: int | None = None
    peer_timeout: int = 30

    @property
    def volume(self) -> str:
        return self.snapshot_volume or f"{self.name}-snapshots"

    @property
    def elastic(self) -> bool:
        """Rounds over the hosts that are there need the rendezvous service's name, which only
        the overlay resolves; on the host network the job is static (every host, always)."""
        return self.network_mode == "overlay"

    def needed_nodes(self, nodes: int) -> int:
        if self.min_nodes is not None:
            return self.min_nodes
        return nodes - 1 if nodes >= 3 else nodes


def image_name_error(image: str) -> str | None:
    """Why ``image`` is not a Docker image reference, or None when it is one."""
    if not image:
        return "it is empty"
    if not IMAGE_RE.match(image):
        return "it is not [registry/]name[:tag][@sha256:digest] in lowercase"
    return None


def size_bytes(value: str) -> int:
    match = SIZE_RE.match(value.strip())
    if not match:
        raise ValueError(f"'{value}' is not a size such as 512m or 2g")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def service_name(host: str) -> str:
    """Inventory hostnames may be FQDNs; service names may not hold dots."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", host).strip("-") or "node"


def assign_ranks(nodes: Iterable[Mapping[str, Any]]) -> tuple[list[Node], list[str]]:
    """Nodes from host vars (``name``, ``hostname``, optional ``node_rank``, ``nproc_per_node``,
    ``addr``, ``gpus``), in inventory order; without ``node_rank`` anywhere, ranks follow that
    order. ``nproc_per_node`` defaults to the node's GPU count, or 1 without GPUs.

    Returns the nodes sorted by rank and the errors, each naming the host and the variable.
    """
    raw = list(nodes)
    errors: list[str] = []
    if not raw:
        return [], ["no training nodes: at least one host must run the job"]
    with_rank = [n["name"] for n in raw if n.get("node_rank") is not None]
    if with_rank and len(with_rank) != len(raw):
        without = [n["name"] for n in raw if n.get("node_rank") is None]
        errors.append(
            f"node_rank is set on {', '.join(with_rank)} but not on {', '.join(without)}: "
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
            errors.append(f"host {host}: node_rank {rank} is negative")
        elif rank in by_rank:
            errors.append(f"host {host}: node_rank {rank} is also the node_rank of {by_rank[rank]}")
        else:
            by_rank[rank] = host
        if nproc < 1:
            errors.append(f"host {host}: nproc_per_node is {nproc}; it must be at least 1")
        elif gpus and nproc > gpus:
            errors.append(
                f"host {host}: nproc_per_node {nproc} needs {nproc} GPUs (one per process), "
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
    """Everything wrong with this job on these nodes (and, when given, this swarm)."""
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
    if job.network_mode not in NETWORK_MODES:
        errors.append(f"job_network_mode '{job.network_mode}' is not one of {', '.join(NETWORK_MODES)}")
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
    try:
        size_bytes(job.shm_size)
    except ValueError as exc:
        errors.append(f"job_shm_size: {exc}")
    if job.memlock and job.memlock != "unlimited":
        try:
            size_bytes(job.memlock)
        except ValueError as exc:
            errors.append(f"job_memlock: {exc} or unlimited")
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


def secret_name(job: str, name: str, salt: str) -> str:
    """The swarm secret holding one value of job_secrets: a new value gets a new salt, so a new name."""
    return f"{job}_{name}_{salt[:SALT_CHARS]}"


SALT_CHARS = 12


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
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


def master_addr(job: Job, nodes: list[Node]) -> str:
    if job.master_addr:
        return job.master_addr
    if job.network_mode == "host":
        return nodes[0].addr
    # Stack deploy gives each service its short name as an alias on the stack's networks.
    return service_name(nodes[0].name)


def torchrun_command(job: Job, nodes: list[Node], node: Node) -> list[str]:
    if job.script_args is not None:
        script_args = list(job.script_args)
    else:
        script_args = [str(job.epochs), str(job.snapshot_every), "--batch_size", str(job.batch_size)]
        script_args += job.trainer_args
    return [
        "torchrun",
        f"--nproc_per_node={node.nproc_per_node}",
        f"--nnodes={len(nodes)}",
        f"--node_rank={node.node_rank}",
        f"--master_addr={master_addr(job, nodes)}",
        f"--master_port={job.master_port}",
        job.script,
        *script_args,
    ]


def _elastic_environment(job: Job, nodes: list[Node], node: Node) -> dict[str, str]:
    """What the launcher's rounds need (torchswarm.elastic reads these)."""
    if not job.elastic:
        return {}
    # Full service names: every stack on the network has a "rendezvous" (and maybe a "node0"),
    # and a short alias resolves to all of them.
    return {
        "TORCHSWARM_RENDEZVOUS": f"{job.name}_{RENDEZVOUS_SERVICE}:{RENDEZVOUS_PORT}",
        "TORCHSWARM_NODE": service_name(node.name),
        "TORCHSWARM_NODE_ADDR": f"{job.name}_{service_name(node.name)}",
        "TORCHSWARM_NODE_ORDER": str(node.node_rank),
        "TORCHSWARM_MIN_NODES": str(job.needed_nodes(len(nodes))),
        "TORCHSWARM_MAX_NODES": str(len(nodes)),
        "TORCHSWARM_PEER_TIMEOUT": str(job.peer_timeout),
    }


def _environment(job: Job, nodes: list[Node], node: Node, secrets: Mapping[str, str]) -> dict[str, str]:
    env = {"TORCHSWARM_SNAPSHOT_DIR": SNAPSHOT_DIR, **_elastic_environment(job, nodes, node)}
    if node.image_id:
        env["TORCHSWARM_IMAGE_ID"] = node.image_id
    if secrets:
        env["TORCHSWARM_SECRETS"] = ",".join(sorted(secrets))
    if job.subnet and job.network_mode == "overlay":
        env["TORCHSWARM_SUBNET"] = job.subnet
    ib_disable = job.network_mode == "overlay" if job.nccl_ib_disable is None else job.nccl_ib_disable
    if ib_disable or job.nccl_ib_disable is not None:
        env["NCCL_IB_DISABLE"] = "1" if ib_disable else "0"
    env.update({str(k): str(v) for k, v in job.env.items()})
    return dict(sorted(env.items()))


def _service(
    job: Job, nodes: list[Node], node: Node, secrets: Mapping[str, str], configs: Mapping[str, str]
) -> dict[str, Any]:
    network = "host" if job.network_mode == "host" else job.network
    return {
        "image": job.image,
        "command": torchrun_command(job, nodes, node),
        "environment": _environment(job, nodes, node, secrets),
        # Files in SECRETS_DIR, readable by root only; the entrypoint exports each one.
        **(
            {"secrets": [{"source": n, "target": n, "mode": 0o400} for n in sorted(secrets)]}
            if secrets
            else {}
        ),
        # job_script_src: each file in the working directory, where torchrun starts the script.
        **(
            {
                "configs": [
                    {"source": c, "target": f"{WORKDIR}/{p}", "mode": 0o444}
                    for p, c in sorted(configs.items())
                ]
            }
            if configs
            else {}
        ),
        "networks": [network],
        "volumes": [
            {"type": "volume", "source": "snapshots", "target": SNAPSHOT_DIR},
            # stack deploy ignores shm_size; NCCL and DataLoader workers need more than 64 MB.
            {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": size_bytes(job.shm_size)}},
        ],
        # Time for the trainer to turn SIGTERM into a snapshot before it is killed.
        "stop_grace_period": job.stop_grace_period,
        **_memlock(job),
        "deploy": {
            "mode": "replicated",
            "replicas": 1,
            # A virtual IP load-balances connections and drops idle ones; rendezvous and
            # collectives keep long-lived connections to the task itself.
            "endpoint_mode": "dnsrr",
            "placement": {"constraints": [f"node.hostname == {node.hostname}"]},
            # torchrun runs with no restarts of its own (an in-place restart reuses stale
            # store keys); when a rank dies every torchrun exits non-zero, the swarm restarts
            # them all, they meet again and resume from the last snapshot. Exit 0 means training
            # finished (the launcher's word); a rank stopped by SIGTERM exits non-zero and is
            # restarted like any other.
            "restart_policy": {
                "condition": "on-failure",
                "delay": job.restart_delay,
                "max_attempts": job.restart_max_attempts,
            },
            "labels": {RANK_LABEL: str(node.node_rank), HOST_LABEL: node.hostname},
            **_gpu_reservation(node),
        },
    }


def _rendezvous_service(job: Job) -> dict[str, Any]:
    """The store every launcher meets in (torchswarm.store): on a manager, so it outlives any
    training host; if its host dies the swarm starts it on another manager (it holds only the
    current round, which the launchers form again)."""
    return {
        "image": job.image,
        "entrypoint": ["python3", "-m", "torchswarm.store"],
        "command": [str(RENDEZVOUS_PORT)],
        "environment": {},  # the generation only, added with the hash
        "networks": [job.network],
        "deploy": {
            "mode": "replicated",
            "replicas": 1,
            "endpoint_mode": "dnsrr",
            "placement": {"constraints": ["node.role == manager"]},
            "restart_policy": {"condition": "any", "delay": "1s"},
            "labels": {ROLE_LABEL: RENDEZVOUS_SERVICE},
        },
    }


def _memlock(job: Job) -> dict[str, Any]:
    memlock = ("unlimited" if job.network_mode == "host" else "") if job.memlock is None else job.memlock
    if not memlock:
        return {}
    limit = -1 if memlock == "unlimited" else size_bytes(memlock)
    return {"ulimits": {"memlock": {"soft": limit, "hard": limit}}}


def _gpu_reservation(node: Node) -> dict[str, Any]:
    """One GPU per process on a GPU node: the swarm picks which and hands their UUIDs to the
    NVIDIA runtime (stack deploy refuses ``devices``; swarm has no ``--gpus``)."""
    if not node.gpus:
        return {}
    spec = {"discrete_resource_spec": {"kind": GPU_KIND, "value": node.nproc_per_node}}
    return {"resources": {"reservations": {"generic_resources": [spec]}}}


def render_stack(
    job: Job,
    nodes: list[Node],
    secrets: Mapping[str, str] | None = None,
    configs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The stack file as a dict, its hash in every service's labels.

    ``secrets`` maps each name of job_secrets to the swarm secret that holds its value (never
    the value): a rotated value has a new swarm secret, so a new hash, so a redeploy.
    ``configs`` maps each file of job_script_src to the swarm config that holds it, named by
    its content: a changed file redeploys the same way.

    The hash is also a container label, so it is part of every service's task template: any
    change to the stack replaces every task together. Replacing only the tasks whose command
    changed (a rank moved to another host, say) would leave them waiting for peers that have
    finished or still belong to the old job.
    """
    network = "host" if job.network_mode == "host" else job.network
    stack: dict[str, Any] = {
        "version": "3.8",
        "services": {
            service_name(n.name): _service(job, nodes, n, secrets or {}, configs or {}) for n in nodes
        }
        | ({RENDEZVOUS_SERVICE: _rendezvous_service(job)} if job.elastic and nodes else {}),
        "networks": {network: {"external": True, "name": network}},
        "volumes": {"snapshots": {"name": job.volume}},
    }
    if secrets:
        stack["secrets"] = {n: {"external": True, "name": secrets[n]} for n in sorted(secrets)}
    if configs:
        stack["configs"] = {name: {"external": True, "name": name} for name in sorted(configs.values())}
    digest = stack_hash(stack)
    for service in stack["services"].values():
        service["deploy"]["labels"][HASH_LABEL] = digest
        service["labels"] = {HASH_LABEL: digest}
        environment = {**service.get("environment", {}), GENERATION_ENV: digest}
        service["environment"] = dict(sorted(environment.items()))
    return stack


def stack_hash(stack: Mapping[str, Any]) -> str:
    """A digest of the stack without its own hash (labels and the generation variable)."""
    bare = json.loads(json.dumps(stack))
    for service in bare.get("services", {}).values():
        service.get("deploy", {}).get("labels", {}).pop(HASH_LABEL, None)
        service.pop("labels", None)
        service.get("environment", {}).pop(GENERATION_ENV, None)
    return hashlib.sha256(json.dumps(bare, sort_keys=True).encode()).hexdigest()[:16]


def stack_path(stack_dir: str, name: str) -> str:
    """Where the manager keeps a job's deployed stack file."""
    return f"{stack_dir.rstrip('/')}/{name}.yml"


def stack_text(stack: Mapping[str, Any]) -> str:
    """The stack file as ``docker stack deploy`` reads it (JSON is YAML). Every ``$`` is doubled:
    the CLI would otherwise interpolate it from the manager's environment, so each value reaches
    the task byte for byte. Not ASCII-escaped: the CLI's YAML parser refuses the surrogate pairs
    that would stand for characters outside the Basic Multilingual Plane."""
    return (
        json.dumps(
            _map_strings(stack, lambda s: s.replace("$", "$$")), indent=2, sort_keys=True, ensure_ascii=False
        )
        + "\n"
    )


def stack_from_text(text: str) -> dict[str, Any]:
    """A stack file written by stack_text, as the dict it came from ({} when there is none)."""
    return _map_strings(json.loads(text), lambda s: s.replace("$$", "$")) if text.strip() else {}


def redacted(stack: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack with every value that came from job_env shown as HIDDEN, for results and diffs.
    Against ``previous``, a value that differs shows as HIDDEN plus ``(changed)``."""
    result = json.loads(json.dumps(stack))
    old_services = (previous or {}).get("services", {})
    for name, service in result.get("services", {}).items():
        old_env = old_services.get(name, {}).get("environment", {})
        env = service.get("environment", {})
        for key in env:
            if key not in OWN_ENV:
                changed = previous is not None and old_env.get(key) != env[key]
                env[key] = f"{HIDDEN} (changed)" if changed else HIDDEN
    return result


def _map_strings(value: Any, change) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


def deployed_differs(stack: Mapping[str, Any], deployed_labels: Mapping[str, Mapping[str, str]]) -> bool:
    """Whether the deployed services (short name -> labels) are not exactly this stack."""
    wanted = {name: s["deploy"]["labels"][HASH_LABEL] for name, s in stack["services"].items()}
    have = {name: labels.get(HASH_LABEL) for name, labels in deployed_labels.items()}
    return wanted != have
