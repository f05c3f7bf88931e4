#!/usr/bin/python
"""Render the DDP training stack from host vars and deploy it when it differs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_stack
short_description: Render and deploy a multi-node torchrun DDP job as a Docker stack
version_added: 0.1.0
description:
  - Renders one swarm service per training node, pinned with a C(node.hostname) placement
    constraint, each running C(torchrun) with that node's C(--node_rank), the cluster's
    C(--nnodes) and rank 0's service as C(--master_addr), exactly as the hand-run guide does.
  - Services use C(endpoint_mode=dnsrr), a C(/dev/shm) tmpfs of O(shm_size), a named snapshot
    volume mounted at C(/snapshots), and a restart policy that restarts a failed torchrun (and so
    every rank, which then resume from the last snapshot) but leaves a finished job alone.
  - Idempotent without touching running tasks. Every service carries a hash of the rendered
    stack as a label. When the deployed services carry the same hash, nothing is done, otherwise
    the stack file is written on the manager and C(docker stack deploy --prune) runs.
  - On nodes that advertise GPUs to the swarm (C(node-generic-resources) of kind C(GPU), set by
    the C(torchswarm.ddp.nvidia) role), each service reserves one GPU per process as a generic
    resource; the swarm hands their UUIDs to the NVIDIA runtime in C(DOCKER_RESOURCE_GPU).
  - Checks its input before anything is deployed (duplicate node ranks, a gap in the ranks, a node
    whose swarm hostname is not in the swarm, fewer than one process per node, more processes
    than the node has GPUs, an invalid image name, durations, the master address, names of
    secrets and environment variables). Every message names the host and the variable.
  - Runs on a swarm manager with the docker CLI.
author:
  - torchswarm maintainers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
  - torchswarm.ddp.attributes.stack_dir
attributes:
  check_mode:
    support: full
    details: Reports whether the stack would be deployed or removed; deploys nothing.
  diff_mode:
    support: full
    details:
      - The stack file as last deployed from this manager, and as rendered now, values of O(env) hidden.
  platform:
    platforms: posix
options:
  name:
    description: The stack's name; services are called C(<name>_<inventory host>).
    type: str
    default: ddp
  state:
    description:
      - V(present) renders and deploys the stack; V(absent) removes its services (C(docker stack rm)),
        keeping the snapshot volumes on the nodes.
    type: str
    choices: [present, absent]
    default: present
  image:
    description: The training image, as every node's engine knows it. Required when O(state=present).
    type: str
  nodes:
    description:
      - The training nodes, in inventory order. Without O(nodes[].node_rank) on any of them,
        ranks follow this order; rank 0 hosts the rendezvous.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The inventory hostname; the node's service is named after it.
        type: str
        required: true
      hostname:
        description: The node's hostname in the swarm (C(docker node ls)), for the placement constraint.
        type: str
        required: true
      node_rank:
        description: The node's C(--node_rank). Set it on every node or on none.
        type: int
      nproc_per_node:
        description:
          - Processes on this node, C(--nproc_per_node); on a GPU node one GPU each, and at
            most as many as the node advertises.
          - Default, the node's GPU count, or 1 on a node without GPUs.
        type: int
      addr:
        description:
          - The address other nodes reach this node on; rank 0's is the master address when
            O(network_mode=host).
        type: str
      image_id:
        description:
          - The ID of O(image) on this node's engine. It is part of what is deployed, so an
            image rebuilt under the same tag redeploys the job; nodes holding different IDs
            are an error.
        type: str
  epochs:
    description: Total epochs, the trainer's first argument.
    type: int
    default: 10
  snapshot_every:
    description: Snapshot interval in epochs, the trainer's second argument.
    type: int
    default: 2
  batch_size:
    description: Batch size per process (C(--batch_size)).
    type: int
    default: 32
  script:
    description: The training script in the image's working directory.
    type: str
    default: training_code.py
  trainer_args:
    description: Extra arguments after the guide's, for example C([--model, gpt]).
    type: list
    elements: str
    default: []
  script_args:
    description:
      - The script's whole argument list, in place of the trainer's (O(epochs), O(snapshot_every),
        C(--batch_size) and O(trainer_args)); for scripts other than the trainer, such as the
        preflight's C(allreduce_check.py).
    type: list
    elements: str
  nccl_ib_disable:
    description:
      - C(NCCL_IB_DISABLE) for every rank, the guide's fix for NCCL hanging on InfiniBand it cannot use.
      - Default, V(true) on the overlay network (it carries only TCP) and NCCL's own choice on the
        host network. O(env) overrides it.
    type: bool
  memlock:
    description:
      - Locked-memory limit of every rank (the C(memlock) ulimit), which NCCL needs for
        InfiniBand and RoCE buffers. V(unlimited), a size such as V(64g), or an empty string for
        Docker's default.
      - Default, V(unlimited) with O(network_mode=host) and Docker's default on the overlay
        network, where NCCL uses only sockets.
    type: str
  env:
    description:
      - Environment for every rank, for example C(NCCL_IB_DISABLE=1). Values reach the task byte
        for byte (a C($) is not interpolated).
      - Not for secrets (use O(secrets)); still, values are shown as C(<hidden>) in the module's
        result, its diff and its logged arguments.
    type: dict
    default: {}
  secrets:
    description:
      - Secret values for every rank, name -> value (from Ansible Vault, say). Each becomes a
        swarm secret, mounted read-only for root in every task and exported by the image's
        entrypoint as the environment variable of that name.
      - Values never appear in the stack file, the result, the diff, C(docker service inspect)
        or logs. A changed value makes a new swarm secret and redeploys the job; swarm secrets
        no stack needs any more are removed, and all of them with O(state=absent).
    type: dict
    default: {}
  script_files:
    description:
      - A user's script and the files beside it, relative path -> text (the
        P(torchswarm.ddp.script_files#lookup) lookup reads job_script_src into this). Each file
        becomes a swarm config named by its content, placed read-only in the image's working
        directory C(/workspace) in every rank's task; O(script) must be one of them. An empty
        file arrives as one newline (a swarm config cannot be empty).
      - A changed file makes a new config and redeploys the job; configs no stack needs any more
        are removed, and all of them with O(state=absent). The result shows digests, not texts.
    type: dict
    default: {}
  master_port:
    description: The rendezvous port on rank 0 (C(--master_port)).
    type: int
    default: 12355
  master_addr:
    description:
      - The rendezvous address. Default, rank 0's service name on the overlay network, or rank 0's
        O(nodes[].addr) on the host network.
    type: str
  network:
    description: The attachable overlay network the services join.
    type: str
    default: ddp-net
  network_mode:
    description:
      - V(overlay) joins O(network); V(host) runs on the hosts' network stacks, for NCCL over
        InfiniBand or RoCE NICs.
    type: str
    choices: [overlay, host]
    default: overlay
  subnet:
    description:
      - The overlay's subnet; the trainer picks the interface in it for NCCL and Gloo
        (C(TORCHSWARM_SUBNET)).
    type: str
  snapshot_volume:
    description: The named volume for snapshots and metrics on each node. Default C(<name>-snapshots).
    type: str
  shm_size:
    description: Size of the C(/dev/shm) tmpfs, for example V(1g).
    type: str
    default: 1g
  restart_delay:
    description: Delay before the swarm restarts a failed task.
    type: str
    default: 10s
  restart_max_attempts:
    description: How many times the swarm restarts a failed task before giving up.
    type: int
    default: 30
  stop_grace_period:
    description: Time between SIGTERM (the trainer snapshots) and SIGKILL.
    type: str
    default: 60s
  min_nodes:
    description:
      - On the overlay the job is elastic; it trains in rounds over the hosts that are there,
        agreed in a rendezvous service on the managers. This many hosts are enough to go on.
      - Default N-1 for 3 or more training hosts, else N.
    type: int
  peer_timeout:
    description: Seconds without a heartbeat after which a host counts as lost and the others
      re-form without it (on the overlay).
    type: int
    default: 30
  with_registry_auth:
    description: Pass the manager's registry login to the nodes (C(--with-registry-auth)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Deploy the guide's job on three nodes
  torchswarm.ddp.training_stack:
    image: torchswarm/trainer:latest
    epochs: 10
    snapshot_every: 2
    batch_size: 32
    env:
      NCCL_IB_DISABLE: "1"
    nodes:
      - {name: node0, hostname: node0}
      - {name: node1, hostname: node1}
      - {name: node2, hostname: node2}
  run_once: true
  delegate_to: "{{ groups['managers'][0] }}"

- name: Remove the job, keep the snapshots
  torchswarm.ddp.training_stack:
    name: ddp
    state: absent
"""

RETURN = r"""
stack:
  description:
    - The rendered stack, as deployed, with the values of O(env) shown as C(<hidden>).
    - Empty when O(state=absent).
  returned: always
  type: dict
  sample: {version: "3.8", services: {node0: {image: torchswarm/trainer:latest}}}
stack_hash:
  description: The digest of the rendered stack that every service carries as a label.
  returned: when O(state=present)
  type: str
  sample: 3f2a9c0d1e4b5a67
stack_file:
  description: Where the stack file is kept on the manager.
  returned: always
  type: str
  sample: /var/lib/torchswarm/stacks/ddp.yml
services:
  description: The stack's training services, one per node in rank order (not the rendezvous service).
  returned: always
  type: list
  elements: str
  sample: [ddp_node0, ddp_node1]
nodes:
  description: The training nodes in rank order, with the rank and process count each was given.
  returned: always
  type: list
  elements: dict
  sample: [{name: node0, hostname: node0, node_rank: 0, nproc_per_node: 2, addr: "", gpus: 2}]
secrets:
  description: Each name of O(secrets) and the swarm secret that holds its value (never the value).
  returned: when O(state=present)
  type: dict
  sample: {WANDB_API_KEY: ddp_WANDB_API_KEY_3f9a0c1d2e4b}
actions:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: list
  elements: str
  sample: ["deploy stack ddp (3 services)"]
"""

import json
import os
from dataclasses import asdict

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils.docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils.gpu import (
    advertised_gpus,
    overlay_gpu_engine_error,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils.script_configs import (
    PATH_LABEL,
    ConfigPlan,
    check_script_files,
    config_data,
    config_name,
    plan_configs,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils.stack import (
    HASH_LABEL,
    HIDDEN,
    RENDEZVOUS_SERVICE,
    STACK_DIR,
    Job,
    Node,
    StackError,
    assign_ranks,
    check_job,
    check_secret_names,
    deployed_differs,
    redacted,
    render_stack,
    stack_from_text,
    stack_path,
    stack_text,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils.swarm_secrets import (
    JOB_LABEL,
    SecretPlan,
    plan_secrets,
)

# The module options that make up the Job (the rest say how to deploy it).
JOB_OPTIONS = set(Job.__dataclass_fields__)


def argument_spec() -> dict:
    return {
        "name": {"type": "str", "default": "ddp"},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "image": {"type": "str"},
        "nodes": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "name": {"type": "str", "required": True},
                "hostname": {"type": "str", "required": True},
                "node_rank": {"type": "int"},
                "nproc_per_node": {"type": "int"},
                "addr": {"type": "str"},
                "image_id": {"type": "str"},
            },
        },
        "epochs": {"type": "int", "default": 10},
        "snapshot_every": {"type": "int", "default": 2},
        "batch_size": {"type": "int", "default": 32},
        "script": {"type": "str", "default": "training_code.py"},
        "trainer_args": {"type": "list", "elements": "str", "default": []},
        "script_args": {"type": "list", "elements": "str"},
        "nccl_ib_disable": {"type": "bool"},
        "memlock": {"type": "str"},
        "env": {"type": "dict", "default": {}},
        "secrets": {"type": "dict", "default": {}, "no_log": True},
        "script_files": {"type": "dict", "default": {}},
        "master_port": {"type": "int", "default": 12355},
        "master_addr": {"type": "str"},
        "network": {"type": "str", "default": "ddp-net"},
        "network_mode": {"type": "str", "choices": ["overlay", "host"], "default": "overlay"},
        "subnet": {"type": "str"},
        "snapshot_volume": {"type": "str"},
        "shm_size": {"type": "str", "default": "1g"},
        "restart_delay": {"type": "str", "default": "10s"},
        "restart_max_attempts": {"type": "int", "default": 30},
        "stop_grace_period": {"type": "str", "default": "60s"},
        "min_nodes": {"type": "int"},
        "peer_timeout": {"type": "int", "default": 30},
        "with_registry_auth": {"type": "bool", "default": False},
        "stack_dir": {"type": "path", "default": STACK_DIR},
    }


def build(
    params: dict,
    swarm_gpus: dict[str, int],
    engine_version: str = "",
    secrets: dict[str, str] | None = None,
    configs: dict[str, str] | None = None,
) -> tuple[dict, list[Node]]:
    """The rendered stack and the nodes in rank order; raises StackError naming every problem.

    ``swarm_gpus``: every swarm node's hostname and the GPUs it advertises; ``engine_version``:
    the manager's Docker Engine; ``secrets``: job_secrets name -> swarm secret name;
    ``configs``: script_files path -> swarm config name.
    """
    values = {k: params[k] for k in JOB_OPTIONS if params.get(k) is not None}
    values["trainer_args"] = tuple(values.get("trainer_args", ()))
    if "script_args" in values:
        values["script_args"] = tuple(values["script_args"])
    job = Job(**values)
    nodes, errors = assign_ranks([{**n, "gpus": swarm_gpus.get(n["hostname"], 0)} for n in params["nodes"]])
    errors += check_job(job, nodes, swarm_gpus)
    errors += check_secret_names(params.get("secrets") or {}, job)
    errors += check_script_files(params.get("script_files") or {}, job.script)
    if job.network_mode == "overlay" and any(n.gpus for n in nodes):
        why = overlay_gpu_engine_error(engine_version)
        errors += [why] if why else []
    if errors:
        raise StackError(errors)
    return render_stack(job, nodes, secrets, configs), nodes


class StackDeployer:
    """Compares the rendered stack with the deployed one and deploys or removes it, with the
    swarm secrets it refers to."""

    def __init__(self, module: AnsibleModule, cli: DockerCli) -> None:
        self.module, self.cli = module, cli
        self.name = module.params["name"]
        self.path = stack_path(module.params["stack_dir"], self.name)
        self.actions: list[str] = []

    def deployed_labels(self) -> dict[str, dict[str, str]]:
        prefix = f"{self.name}_"
        return {
            s["Spec"]["Name"].removeprefix(prefix): s["Spec"].get("Labels") or {}
            for s in self.cli.stack_services(self.name)
        }

    def previous_stack(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return stack_from_text(handle.read())
        except FileNotFoundError:
            return {}

    def plan_secrets(self) -> SecretPlan:
        return plan_secrets(
            self.name, self.module.params["secrets"], self.cli.labelled("secret", f"{JOB_LABEL}={self.name}")
        )

    def create_secrets(self, plan: SecretPlan) -> bool:
        for swarm_name, name, labels in plan.create:
            self.actions.append(f"create swarm secret {swarm_name} for job_secrets {name}")
            self._create("secret", swarm_name, labels, str(self.module.params["secrets"][name]))
        return bool(plan.create)

    def _create(self, kind: str, swarm_name: str, labels: dict[str, str], data: str) -> None:
        """``docker secret|config create`` with labels, the value on stdin (never in argv)."""
        if not self.module.check_mode:
            label_args = [a for k, v in sorted(labels.items()) for a in ("--label", f"{k}={v}")]
            self.cli.run(kind, "create", *label_args, swarm_name, "-", data=data)

    def remove_secrets(self, names: list[str], kind: str = "secret") -> bool:
        for swarm_name in names:
            self.actions.append(f"remove swarm {kind} {swarm_name}")
            if not self.module.check_mode:
                self.cli.run(kind, "rm", swarm_name)
        return bool(names)

    def plan_configs(self) -> ConfigPlan:
        existing = self.cli.labelled("config", f"{JOB_LABEL}={self.name}")
        return plan_configs(self.name, self.module.params["script_files"], existing)

    def create_configs(self, plan: ConfigPlan) -> bool:
        for swarm_name, path in plan.create:
            self.actions.append(f"create swarm config {swarm_name} for job_script_src {path}")
            labels = {JOB_LABEL: self.name, PATH_LABEL: path}
            self._create("config", swarm_name, labels, config_data(self.module.params["script_files"][path]))
        return bool(plan.create)

    def present(self, stack: dict) -> bool:
        if not deployed_differs(stack, self.deployed_labels()):
            return False
        ranks = [name for name in stack["services"] if name != RENDEZVOUS_SERVICE]
        store = " with its rendezvous service" if len(ranks) < len(stack["services"]) else ""
        self.actions.append(f"deploy stack {self.name} ({len(ranks)} services){store}")
        if self.module.check_mode:
            return True
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        self._write(stack_text(stack))
        args = ["stack", "deploy", "--compose-file", self.path, "--prune"]
        if self.module.params["with_registry_auth"]:
            args.append("--with-registry-auth")
        self.cli.run(*args, self.name)
        return True

    def absent(self) -> bool:
        changed = False
        if self.deployed_labels():
            changed = True
            self.actions.append(f"remove stack {self.name}; snapshot volumes stay")
            if not self.module.check_mode:
                self.cli.run("stack", "rm", self.name)
                if os.path.exists(self.path):
                    os.remove(self.path)
        changed = self.remove_secrets(self.plan_configs().obsolete, kind="config") or changed
        return self.remove_secrets(self.plan_secrets().obsolete) or changed

    def _write(self, text: str) -> None:
        """Atomically and durably, readable by root only from the first byte."""
        temp = f"{self.path}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, self.path)
        directory = os.open(os.path.dirname(self.path), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def logged_arguments(params: dict) -> dict:
    """The module's arguments as its result shows them: names of env and secrets, values hidden;
    script files by the config that holds them, not their text."""
    files = params.get("script_files") or {}
    return {
        **params,
        **{k: dict.fromkeys(params.get(k) or {}, HIDDEN) for k in ("env", "secrets")},
        "script_files": {path: config_name(params["name"], path, text) for path, text in files.items()},
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ("image", "nodes"))],
        supports_check_mode=True,
    )
    p = module.params
    invocation = {"module_args": logged_arguments(p)}
    try:
        cli = DockerCli(module)
        deployer = StackDeployer(module, cli)
        before = deployer.previous_stack()
        stack: dict = {}
        nodes: list[Node] = []
        plan = SecretPlan()
        if p["state"] == "absent":
            changed = deployer.absent()
        else:
            swarm = cli.inspect(list(cli.swarm_nodes()), kind="node")
            gpus = {n["Description"]["Hostname"]: advertised_gpus(n) for n in swarm}
            plan, configs = deployer.plan_secrets(), deployer.plan_configs()
            version = cli.run("version", "--format", "{{.Server.Version}}")
            # Checked in full before anything changes; then secrets and configs, which the stack refers to.
            stack, nodes = build(p, gpus, version, plan.refs, configs.refs)
            created = deployer.create_secrets(plan)
            created = deployer.create_configs(configs) or created
            changed = deployer.present(stack) or created
            changed = deployer.remove_secrets(plan.obsolete) or changed
            changed = deployer.remove_secrets(configs.obsolete, kind="config") or changed
    except StackError as exc:
        module.fail_json(
            msg="The training stack has problems; nothing was deployed:\n"
            + "\n".join(f"- {e}" for e in exc.errors),
            errors=exc.errors,
            invocation=invocation,
        )
    except DockerCliError as exc:
        module.fail_json(msg=str(exc), invocation=invocation)
    services = [f"{p['name']}_{name}" for name in stack.get("services", {}) if name != RENDEZVOUS_SERVICE]
    result = {
        "changed": changed,
        "stack": redacted(stack),
        "stack_file": deployer.path,
        "services": services,
        "nodes": [asdict(n) for n in nodes],
        "actions": deployer.actions,
        "invocation": invocation,
    }
    if stack:
        result["stack_hash"] = next(iter(stack["services"].values()))["deploy"]["labels"][HASH_LABEL]
        result["secrets"] = plan.refs
    if module._diff and changed:
        result["diff"] = {
            "before": render_text(redacted(before)) if before else "",
            "after": render_text(redacted(stack, before)) if stack else "",
            "before_header": deployer.path,
            "after_header": deployer.path,
        }
    module.exit_json(**result)


def render_text(stack: dict) -> str:
    """For diffs: the stack as a person reads it (the file itself doubles every $)."""
    return json.dumps(stack, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    main()
