"""Render the training job's Docker stack: a job and its nodes in rank order (job_checks makes
them) in, the stack file out.

Pure: plain data in, a stack (a dict that ``docker stack deploy`` reads as YAML) out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.torchswarm.ddp.plugins.module_utils._data_chain import version_dir
from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import GPU_KIND
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_OPTIONS, Job

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
    "TORCHSWARM_OUTPUT_DIR",
    "TORCHSWARM_PEER_TIMEOUT",
    "TORCHSWARM_RENDEZVOUS",
    "TORCHSWARM_SECRETS",
    "TORCHSWARM_SNAPSHOT_DIR",
    "TORCHSWARM_SNAPSHOT_KEEP",
    "TORCHSWARM_STALL_RESTARTS",
    "TORCHSWARM_STALL_TIMEOUT",
    "TORCHSWARM_START_ATTEMPTS",
    "TORCHSWARM_SUBNET",
)
# The stack's hash, as the launcher in every task reads it: a completion record is this
# generation's only. Set after hashing, like the hash labels.
GENERATION_ENV = "TORCHSWARM_GENERATION"
# Where a rank leaves what should come back to the controller (rank 0's, after the run): a
# directory per generation under its node's snapshot directory. Set after hashing too.
OUTPUT_ENV = "TORCHSWARM_OUTPUT_DIR"
HIDDEN = "<hidden>"
# Inside each task, swarm secrets are files here; the image's entrypoint exports them.
SECRETS_DIR = "/run/secrets"
SHM_DIR = "/dev/shm"
# Where job_mounts may not go: inside or above any of these.
RESERVED_TARGETS = (WORKDIR, SNAPSHOT_DIR, SHM_DIR, SECRETS_DIR)


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


def size_bytes(value: str) -> int:
    """A size such as 512m or 2g (powers of 1024, as Docker reads them) in bytes; ValueError if not one."""
    return human_to_bytes(value.strip().upper())


def service_name(host: str) -> str:
    """Inventory hostnames may be FQDNs; service names may not hold dots."""
    return re.sub(r"[^a-zA-Z0-9-]", "-", host).strip("-") or "node"


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


def script_of(stack: Mapping[str, Any]) -> str:
    """The script a rendered stack's ranks run (torchrun's first argument that is no option)."""
    ranks = [s for name, s in stack.get("services", {}).items() if name != RENDEZVOUS_SERVICE]
    command = ranks[0].get("command", []) if ranks else []
    return next((arg for arg in command[1:] if not arg.startswith("-")), "")


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


def _snapshot_subdir(job: Job, node: Node) -> str:
    """On job_snapshot_dir (which every node may share), each node's directory of its own."""
    return f"{job.name}/{node.name}"


def snapshot_dir(job: Job, node: Node) -> str:
    """Where the node's ranks keep snapshots: the named volume's root, or their directory on
    job_snapshot_dir."""
    return f"{SNAPSHOT_DIR}/{_snapshot_subdir(job, node)}" if job.snapshot_dir else SNAPSHOT_DIR


def snapshot_host_dir(job: Job, node: Node) -> str:
    """The same directory as the node's host sees it; empty on the named volume (which the
    engine places)."""
    return f"{job.snapshot_dir}/{_snapshot_subdir(job, node)}" if job.snapshot_dir else ""


def _environment(job: Job, nodes: list[Node], node: Node, secrets: Mapping[str, str]) -> dict[str, str]:
    env = {"TORCHSWARM_SNAPSHOT_DIR": snapshot_dir(job, node), **_elastic_environment(job, nodes, node)}
    # Unset, the trainer keeps its default (the option's): a stack deployed before the option
    # existed stays the same, and a running job is not redeployed for it.
    if job.snapshot_keep != JOB_OPTIONS["snapshot_keep"]["default"]:
        env["TORCHSWARM_SNAPSHOT_KEEP"] = str(job.snapshot_keep)
    # Unset at their defaults, as TORCHSWARM_SNAPSHOT_KEEP, which the image's launcher knows too.
    for option in ("start_attempts", "stall_timeout", "stall_restarts"):
        if getattr(job, option) != JOB_OPTIONS[option]["default"]:
            env[f"TORCHSWARM_{option.upper()}"] = str(getattr(job, option))
    if node.image_id:
        env["TORCHSWARM_IMAGE_ID"] = node.image_id
    if job.data_digest:
        # The digest too: a changed dataset is a changed stack, and the job is deployed again.
        env.update(TORCHSWARM_DATA_DIR=job.data_target, TORCHSWARM_DATA_DIGEST=job.data_digest)
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
            (
                {"type": "bind", "source": job.snapshot_dir, "target": SNAPSHOT_DIR, "read_only": False}
                if job.snapshot_dir
                else {"type": "volume", "source": "snapshots", "target": SNAPSHOT_DIR}
            ),
            # stack deploy ignores shm_size; NCCL and DataLoader workers need more than 64 MB.
            {"type": "tmpfs", "target": SHM_DIR, "tmpfs": {"size": size_bytes(job.shm_size)}},
            *(_mount(i, m) for i, m in enumerate(job.mounts)),
            *(
                [
                    {
                        "type": "bind",
                        "source": version_dir(job.data_host_dir, job.data_digest),
                        "target": job.data_target,
                        "read_only": True,
                    }
                ]
                if job.data_digest
                else []
            ),
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
            **_resources(job, node),
        },
    }


def mount_volume_key(index: int) -> str:
    """The stack's key for job_mounts[index]'s named volume."""
    return f"mount{index}"


def mount_kind(mount: Mapping[str, Any]) -> str:
    """A job_mounts entry's type: bind (a host path) unless it says otherwise."""
    return mount.get("type") or "bind"


def mount_read_only(mount: Mapping[str, Any]) -> bool:
    """Whether a host path or named volume is mounted read-only: unless read_only is false."""
    return mount.get("read_only") is not False


def _mount(index: int, mount: Mapping[str, Any]) -> dict[str, Any]:
    """One of job_mounts as the stack's long volume syntax (job_checks checked it)."""
    kind = mount_kind(mount)
    if kind == "tmpfs":
        return {"type": "tmpfs", "target": mount["target"], "tmpfs": {"size": size_bytes(mount["size"])}}
    return {
        "type": kind,
        "source": mount["source"] if kind == "bind" else mount_volume_key(index),
        "target": mount["target"],
        "read_only": mount_read_only(mount),
    }


def _mount_volumes(job: Job) -> dict[str, Any]:
    """The stack's declaration of job_mounts' named volumes: each node creates one on first use,
    with the local driver's options when given (NFS, for example)."""
    volumes = {}
    for i, mount in enumerate(job.mounts):
        if mount_kind(mount) == "volume":
            opts = {str(k): str(v) for k, v in (mount.get("driver_opts") or {}).items()}
            volumes[mount_volume_key(i)] = {
                "name": mount["source"],
                **({"driver_opts": opts} if opts else {}),
            }
    return volumes


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


def _resources(job: Job, node: Node) -> dict[str, Any]:
    """The task's CPU limit (job_cpus), and one GPU per process on a GPU node: the swarm
    picks which and hands their UUIDs to the NVIDIA runtime (stack deploy refuses ``devices``;
    swarm has no ``--gpus``)."""
    resources: dict[str, Any] = {}
    if job.cpus is not None:
        resources["limits"] = {"cpus": f"{job.cpus:g}"}
    if node.gpus:
        spec = {"discrete_resource_spec": {"kind": GPU_KIND, "value": node.nproc_per_node}}
        resources["reservations"] = {"generic_resources": [spec]}
    return {"resources": resources} if resources else {}


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
        "volumes": {
            **({} if job.snapshot_dir else {"snapshots": {"name": job.volume}}),
            **_mount_volumes(job),
        },
    }
    if secrets:
        stack["secrets"] = {n: {"external": True, "name": secrets[n]} for n in sorted(secrets)}
    if configs:
        stack["configs"] = {name: {"external": True, "name": name} for name in sorted(configs.values())}
    digest = stack_hash(stack)
    # The ranks' services also get their output directory of this generation.
    outputs = {service_name(n.name): {OUTPUT_ENV: output_dir(job, n, digest)} for n in nodes}
    for name, service in stack["services"].items():
        service["deploy"]["labels"][HASH_LABEL] = digest
        service["labels"] = {HASH_LABEL: digest}
        environment = {**service.get("environment", {}), GENERATION_ENV: digest, **outputs.get(name, {})}
        service["environment"] = dict(sorted(environment.items()))
    return stack


# What the image writes in each node's snapshot directory that the controller reads back: the
# launcher's completion record (torchswarm/record.py) and the bundled trainer's metrics
# (training_code.py); tests/unit checks that the names agree with the image's.
RECORD_DIR = ".torchswarm"
METRICS_FILE = "metrics.jsonl"


def completion_record(generation: str) -> str:
    """Where in its node's snapshot directory a generation's completion record is."""
    return f"{RECORD_DIR}/complete-{generation}.json"


def output_subdir(generation: str) -> str:
    """Where in its node's snapshot directory a generation's output is."""
    return f"output/{generation}"


def output_dir(job: Job, node: Node, generation: str) -> str:
    """TORCHSWARM_OUTPUT_DIR of the node's ranks in this generation."""
    return f"{snapshot_dir(job, node)}/{output_subdir(generation)}"


def stack_hash(stack: Mapping[str, Any]) -> str:
    """A digest of the stack without its own hash."""
    return hashlib.sha256(json.dumps(without_hash(stack), sort_keys=True).encode()).hexdigest()[:16]


def without_hash(stack: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the stack without what render_stack derives from its hash (labels, the
    generation and output directory variables): what a person compares."""
    bare = json.loads(json.dumps(stack))
    for service in bare.get("services", {}).values():
        service.get("deploy", {}).get("labels", {}).pop(HASH_LABEL, None)
        service.pop("labels", None)
        for name in (GENERATION_ENV, OUTPUT_ENV):
            service.get("environment", {}).pop(name, None)
    return bare


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


def service_hashes(stack: Mapping[str, Any]) -> dict[str, str]:
    """Each service's short name and the stack hash it carries: what a deployment is compared by."""
    return {name: s["deploy"]["labels"][HASH_LABEL] for name, s in stack.get("services", {}).items()}
