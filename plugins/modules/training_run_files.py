#!/usr/bin/python
"""Read what a finished run left in a node's snapshot directory, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_run_files
short_description: Read a run's completion record and the trainer's metrics from a node
version_added: 0.2.0
description:
  - Reads, and changes nothing, what the training image leaves in the snapshot directory of a
    node whose ranks saw the run finish, the launcher's completion record of the run (host, world
    size, wall time) and the bundled trainer's C(metrics.jsonl), one record per epoch.
  - The snapshot directory is O(path) on the host, or the Docker volume O(volume), found where
    the engine keeps it.
  - The job role runs it on the first node (in rank order) whose rank completed, and hands what
    it read to M(torchswarm.ddp.training_results).
author:
  - torchswarm maintainers (@torchswarm)
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
  path:
    description: The snapshot directory on this host (C(job_snapshot_dir)'s directory of the node).
    type: path
  volume:
    description: The snapshot volume's name, C(<job>-snapshots).
    type: str
  run:
    description: The run, its stack hash (the generation the launcher records).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Read the completion record and the metrics from a node that finished
  torchswarm.ddp.training_run_files:
    volume: ddp-snapshots
    run: "{{ job_info.stack_hash }}"
  delegate_to: node1
  register: job_files
"""

RETURN = r"""
path:
  description: The snapshot directory read.
  returned: success
  type: str
  sample: /var/lib/docker/volumes/ddp-snapshots/_data
completion:
  description: The run's completion record; empty when the run did not complete on this node.
  returned: success
  type: dict
  sample:
    generation: 3f2a9c0d1e4b5a67
    finished_at: "2026-12-07T12:00:00Z"
    host: node0
    world_size: 3
    wall_s: 61.2
metrics:
  description: The text of the trainer's C(metrics.jsonl); empty when there is none (a user's script).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._job import run_files


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path"},
            "volume": {"type": "str"},
            "run": {"type": "str", "required": True},
        },
        mutually_exclusive=[("path", "volume")],
        required_one_of=[("path", "volume")],
        supports_check_mode=True,
    )
    path = module.params["path"]
    if module.params["volume"]:
        try:
            path = DockerCli(module).inspect([module.params["volume"]], kind="volume")[0]["Mountpoint"]
        except DockerCliError as exc:
            module.fail_json(msg=f"the snapshot volume {module.params['volume']}: {exc}")
    module.exit_json(changed=False, path=path, **run_files(path, module.params["run"]))


if __name__ == "__main__":
    main()
