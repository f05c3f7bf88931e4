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
  - Services use C(endpoint_mode=dnsrr), a C(/dev/shm) tmpfs of O(job.shm_size), a named snapshot
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
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
  - torchswarm.ddp.attributes.stack_dir
  - torchswarm.ddp.attributes.job_name
  - torchswarm.ddp.job
attributes:
  check_mode:
    support: full
    details: Reports whether the stack would be deployed or removed; deploys nothing.
  diff_mode:
    support: full
    details:
      - What differs, and only that - each service's stack hash as the swarm runs it and as rendered
        now, and the parts of the stack file last deployed from this manager that the new one
        changes - with values of O(job.env) hidden.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) renders and deploys the stack; V(absent) removes its services (C(docker stack rm)),
        keeping the snapshot volumes on the nodes.
    type: str
    choices: [present, absent]
    default: present
  nodes:
    description:
      - The training nodes, in inventory order. Without O(nodes[].node_rank) on any of them,
        ranks follow this order; rank 0 hosts the rendezvous. Required when O(state=present).
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
            O(job.network_mode=host).
        type: str
      image_id:
        description:
          - The ID of O(job.image) on this node's engine. It is part of what is deployed, so an
            image rebuilt under the same tag redeploys the job; nodes holding different IDs
            are an error.
        type: str
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
  data_digest:
    description:
      - The digest of the dataset the job role staged from C(job_data_src) on every training host
        (M(torchswarm.ddp.data_relay)); empty, none. With one, every rank mounts O(job.data_dir)
        read-only at O(job.data_target), and a changed digest deploys the job again.
    type: str
    default: ""
  script_files:
    description:
      - A user's script and the files beside it, relative path -> text (the
        P(torchswarm.ddp.script_files#lookup) lookup reads job_script_src into this). Each file
        becomes a swarm config named by its content, placed read-only in the image's working
        directory C(/workspace) in every rank's task; O(job.script) must be one of them. An empty
        file arrives as one newline (a swarm config cannot be empty).
      - A changed file makes a new config and redeploys the job; configs no stack needs any more
        are removed, and all of them with O(state=absent). The result shows digests, not texts.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Deploy the guide's job on three nodes
  torchswarm.ddp.training_stack:
    job:
      image: torchswarm/trainer:latest
      epochs: 10
      snapshot_every: 2
      batch_size: 32
      env:
        NCCL_DEBUG: INFO
    nodes:
      - {name: node0, hostname: node0}
      - {name: node1, hostname: node1}
      - {name: node2, hostname: node2}
  run_once: true
  delegate_to: "{{ groups['torchswarm_manager'][0] }}"

- name: Remove the job, keep the snapshots
  torchswarm.ddp.training_stack:
    name: ddp
    state: absent
"""

RETURN = r"""
stack:
  description:
    - The rendered stack, as deployed, with the values of O(job.env) shown as C(<hidden>).
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
output_subdir:
  description: Where each rank's C(TORCHSWARM_OUTPUT_DIR) is, relative to its node's snapshot directory.
  returned: when O(state=present)
  type: str
  sample: output/3f2a9c0d1e4b5a67
snapshot_dirs:
  description:
    - Each training node's snapshot directory on its host, by inventory host, under
      C(job.snapshot_dir); empty strings for the named volume, which the engine places.
  returned: always
  type: dict
  sample: {node0: /mnt/ckpt/ddp/node0, node1: /mnt/ckpt/ddp/node1}
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._deployer import StackDeployer, wanted
from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import StackError
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_NAME
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import argument_spec as job_spec
from ansible_collections.torchswarm.ddp.plugins.module_utils._script_configs import config_name
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import HIDDEN, STACK_DIR
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_view import SwarmView

ARGUMENT_SPEC = {
    "name": {"type": "str", "default": JOB_NAME},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "job": {"type": "dict", "options": job_spec()},
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
    "secrets": {"type": "dict", "default": {}, "no_log": True},
    "script_files": {"type": "dict", "default": {}},
    "data_digest": {"type": "str", "default": ""},
    "stack_dir": {"type": "path", "default": STACK_DIR},
}


def main() -> None:
    module = AnsibleModule(
        ARGUMENT_SPEC, required_if=[("state", "present", ("job",))], supports_check_mode=True
    )
    p = module.params
    invocation = {"module_args": logged_arguments(p)}
    view = SwarmView(DockerCli(module), p["name"], p["stack_dir"])
    deployer, target = StackDeployer(view, module.check_mode), None
    try:
        if p["state"] == "absent":
            deployer.remove()
        else:
            target = wanted(view, p["job"], p["nodes"], p["secrets"], p["script_files"], p["data_digest"])
            deployer.apply(target)
    except StackError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors, invocation=invocation)
    except DockerCliError as exc:
        module.fail_json(msg=str(exc), invocation=invocation)
    module.exit_json(**deployer.result(target, module._diff), invocation=invocation)


def logged_arguments(params: dict) -> dict:
    """The module's arguments as its result shows them: names of job env and secrets, values
    hidden; script files by the config that holds them, not their text."""
    job = params.get("job")
    files = params.get("script_files") or {}
    return {
        **params,
        "job": job and {**job, "env": dict.fromkeys(job.get("env") or {}, HIDDEN)},
        "secrets": dict.fromkeys(params.get("secrets") or {}, HIDDEN),
        "script_files": {path: config_name(params["name"], path, text) for path, text in files.items()},
    }


if __name__ == "__main__":
    main()
