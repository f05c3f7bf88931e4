#!/usr/bin/python
"""Report what a deployed training stack's services and tasks are doing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_job_info
short_description: The state of a training job deployed with torchswarm.ddp.training_stack
version_added: 0.1.0
description:
  - Reads the stack's services and tasks on a swarm manager and returns one row per service (its
    newest task of the current deployment, with its node, state, exit code and error, and how
    many tasks the swarm has started for it in this deployment) and the job's state.
  - V(complete) when every rank's task completed, lost ranks aside (the image's launcher exits
    0 only when training finished), V(failed) when a task exited 3 (do not retry) or the swarm has
    given up on one, V(recovering) while a rank is lost (its node down) or the swarm restarts
    ranks, V(running) while every rank is up or starting, and V(absent) when the stack has no
    services.
  - Tasks of a deployment that an update replaced never count, so a wait right after a redeploy
    reads the new one.
  - With O(logs_since), also the JSON records that the ranks printed since then (rank 0's
    epochs and summary, each rank's speed per epoch), from the logs of this deployment's tasks
    on nodes that are up; torchswarm.ddp.training_job_wait polls it that way to print progress.
  - Also the deployed stack, read from the manager's stack file, with job_env values hidden.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
  - torchswarm.ddp.attributes.stack_dir
  - torchswarm.ddp.attributes.job_name
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  logs:
    description:
      - Also every rank's whole log (stdout and stderr, as C(docker service logs --timestamps
        --no-trunc) gives them) on a node that is up. Each service is read until a read adds no
        line (at most five reads), for a single read can miss a remote node's lines (moby#33183).
    type: bool
    default: false
  logs_since:
    description:
      - Read the records the ranks printed after this time (RFC 3339, as RV(logs_until) returns
        it); an empty string reads them all. Left unset, no logs are read.
    type: str
"""

EXAMPLES = r"""
- name: Read the job's state
  torchswarm.ddp.training_job_info:
    name: ddp
  register: job

- name: Read the epochs rank 0 reported so far
  torchswarm.ddp.training_job_info:
    name: ddp
    logs_since: ""
  register: job_records
"""

RETURN = r"""
state:
  description: V(absent), V(running), V(recovering), V(complete) or V(failed).
  returned: always
  type: str
  sample: complete
services:
  description:
    - One row per rank's service, in node rank order (the rendezvous service is not a rank).
    - C(lost) is true when the node the rank is pinned to is down or gone from the swarm; an
      elastic job trains on without it and is complete when every rank that is not lost is.
  returned: always
  type: list
  elements: dict
  sample:
    - {service: ddp_node0, rank: 0, node: node0, state: complete, desired_state: shutdown,
       exit_code: 0, error: "", tasks: 1, task_id: x2b5kq0w3h2vd8s9g7u3n1f0c, host: node0, lost: false}
training_hosts:
  description: How many ranks' services run now on a node that is up (the hosts of the current round).
  returned: always
  type: int
  sample: 2
lost:
  description: The services of ranks whose node is down or gone.
  returned: always
  type: list
  elements: str
  sample: [ddp_node2]
task_ids:
  description: The IDs of every task of the current deployment (their logs are this run's).
  returned: always
  type: list
  elements: str
  sample: [x2b5kq0w3h2vd8s9g7u3n1f0c]
stack:
  description: The deployed stack with the values of job_env hidden; empty when there is no stack file.
  returned: always
  type: dict
  sample: {version: "3.8", services: {node0: {image: torchswarm/trainer:latest}}}
stack_hash:
  description: The digest of the deployed stack (the run), as every service carries it; empty when absent.
  returned: always
  type: str
  sample: 3f2a9c0d1e4b5a67
records:
  description:
    - The JSON records the ranks printed after O(logs_since) (rank 0's epochs and summary, each
      rank's C(rank_speed) per epoch), in time order, each with the C(time) and C(service) of its
      log line.
  returned: when O(logs_since) is set
  type: list
  elements: dict
  sample:
    - {event: epoch, epoch: 3, loss: 0.41, samples_per_s: 950.2, world_size: 3, elapsed_s: 31.8,
       time: "2026-11-26T22:00:00.123456789Z", service: ddp_node0}
logs:
  description: Every rank's whole log by service name, lines in the order read.
  returned: when O(logs=true)
  type: dict
  sample: {ddp_node0: "2026-11-26T22:00:00.1Z ddp_node0.1.x2b5kq0w3h2vd8s9g@node0    | torchswarm: ..."}
logs_until:
  description: The time of the newest log line read; the next poll's O(logs_since).
  returned: when O(logs_since) is set
  type: str
  sample: "2026-11-26T22:00:00.123456789Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_NAME
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    HASH_LABEL,
    STACK_DIR,
    redacted,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_view import SwarmView


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": JOB_NAME},
            "logs": {"type": "bool", "default": False},
            "logs_since": {"type": "str"},
            "stack_dir": {"type": "path", "default": STACK_DIR},
        },
        supports_check_mode=True,
    )
    since = module.params["logs_since"]
    view = SwarmView(DockerCli(module), module.params["name"], module.params["stack_dir"])
    try:
        result, services = view.job()
        if since is not None:
            result["records"], result["logs_until"] = view.records_since(
                since, result["services"], result["task_ids"]
            )
        if module.params["logs"]:
            result["logs"] = view.whole_logs(result["services"])
    except DockerCliError as exc:
        module.fail_json(msg=str(exc))
    result["stack"] = redacted(view.deployed_stack())
    labels = [s["Spec"].get("Labels") or {} for s in services]
    result["stack_hash"] = next((label[HASH_LABEL] for label in labels if HASH_LABEL in label), "")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
