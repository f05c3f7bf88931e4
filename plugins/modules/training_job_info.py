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
  - Poll it with C(until) to wait for a job to finish.
author:
  - torchswarm maintainers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description: The stack's name.
    type: str
    default: ddp
"""

EXAMPLES = r"""
- name: Wait for the job to finish
  torchswarm.ddp.training_job_info:
    name: ddp
  register: job
  until: job.state in ['complete', 'failed']
  retries: 360
  delay: 10
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
       exit_code: 0, error: "", tasks: 1, task_id: x2b5kq0w3h2vd8s9g7u3n1f0c, lost: false}
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils.docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils.job import job_tasks


def main() -> None:
    module = AnsibleModule(
        argument_spec={"name": {"type": "str", "default": "ddp"}}, supports_check_mode=True
    )
    name = module.params["name"]
    try:
        cli = DockerCli(module)
        services = cli.stack_services(name)
        task_ids = cli.lines("stack", "ps", "--quiet", "--no-trunc", name) if services else []
        tasks = cli.inspect(task_ids)
        nodes = cli.swarm_nodes()
        ready = cli.ready_nodes()
    except DockerCliError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **job_tasks(name, services, tasks, nodes, ready))


if __name__ == "__main__":
    main()
