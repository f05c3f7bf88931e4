#!/usr/bin/python
"""Bring what a training run left in a node's output directory to the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_output
short_description: Bring a run's output directory from a node to the controller, checked
version_added: 0.1.0
description:
  - One end of the transfer of what rank 0 wrote to C(TORCHSWARM_OUTPUT_DIR) (the bundled
    trainer's final model, for one), over one TCP connection, streamed (nothing is held in
    memory) and checked file by file with sha256.
  - The node that holds the directory runs it with O(mode=serve) (with C(async), C(poll=0)) and
    listens on O(port); the controller runs it with O(mode=fetch), connects and writes the files
    to C(<dest>/<name>/<run>/output/), the run's results directory (as
    M(torchswarm.ddp.training_results) names it). Files land there only once every digest
    matched.
  - More than O(max_bytes) in all is not taken; RV(skipped) says how much was left, and the
    node keeps it.
  - The job role runs it after a waited run completes, unless C(job_results_output) is false.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
  - torchswarm.ddp.attributes.job_name
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The files are written again with the same content.
  platform:
    platforms: posix
options:
  mode:
    description: Which end this host is.
    type: str
    choices: [serve, fetch]
    required: true
  path:
    description: O(mode=serve), the output directory on this host; a missing one is served as empty.
    type: path
  address:
    description: O(mode=fetch), the serving node's address.
    type: str
  port:
    description: The TCP port the serving node listens on.
    type: int
    default: 29700
  token:
    description: A secret made for this transfer; the serving node refuses any other.
    type: str
    required: true
  dest:
    description: O(mode=fetch), the results directory on the controller.
    type: path
  run:
    description: O(mode=fetch), the run (its stack hash).
    type: str
  max_bytes:
    description: O(mode=fetch), the most bytes taken in all.
    type: int
    default: 10737418240
  wait:
    description: Seconds to wait for the other end to connect, or to be there to connect to.
    type: int
    default: 60
  timeout:
    description: Seconds a connection may stay silent.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Offer rank 0's output directory
  torchswarm.ddp.training_output:
    mode: serve
    path: /var/lib/docker/volumes/ddp-snapshots/_data/output/3f2a9c0d1e4b5a67
    token: "{{ output_token }}"
  delegate_to: node0
  async: 3600
  poll: 0
  register: output_serve

- name: Fetch it into the run's results
  torchswarm.ddp.training_output:
    mode: fetch
    address: 10.0.0.10
    token: "{{ output_token }}"
    dest: "{{ playbook_dir }}/torchswarm-results"
    name: ddp
    run: 3f2a9c0d1e4b5a67
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: The files, relative to the output directory, with their sizes and (once sent) sha256.
  returned: success
  type: list
  elements: dict
  sample: [{path: model.pt, size: 1431, sha256: 9f86d081884c7d65...}]
bytes:
  description: The bytes transferred.
  returned: success
  type: int
path:
  description: O(mode=fetch), where the files are on the controller.
  returned: success
  type: str
  sample: /home/ops/torchswarm-results/ddp/3f2a9c0d1e4b5a67/output
skipped:
  description: Why nothing was transferred (more than O(max_bytes)); null when the files came.
  returned: success
  type: str
peer:
  description: O(mode=serve), the address that fetched the files.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils import _dir_stream as dir_stream
from ansible_collections.torchswarm.ddp.plugins.module_utils._job import run_dir_name
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_NAME

ARGUMENT_SPEC = {
    "mode": {"type": "str", "choices": ["serve", "fetch"], "required": True},
    "path": {"type": "path"},
    "address": {"type": "str"},
    "port": {"type": "int", "default": 29700},
    "token": {"type": "str", "required": True, "no_log": True},
    "dest": {"type": "path"},
    "name": {"type": "str", "default": JOB_NAME},
    "run": {"type": "str"},
    "max_bytes": {"type": "int", "default": 10 << 30},
    "wait": {"type": "int", "default": 60},
    "timeout": {"type": "int", "default": 120},
}


def serve(p: dict) -> dict:
    conn, peer = dir_stream.accept(p["port"], p["token"], p["wait"], p["timeout"])
    with conn:
        return {**dir_stream.send_dir(conn, p["path"]), "peer": peer}


def fetch(p: dict) -> dict:
    path = os.path.join(p["dest"], run_dir_name(p["name"], p["run"]), "output")
    with dir_stream.connect(p["address"], p["port"], p["token"], p["wait"], p["timeout"]) as conn:
        return {**dir_stream.receive_dir(conn, path, p["max_bytes"]), "path": path}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("mode", "serve", ("path",)), ("mode", "fetch", ("address", "dest", "run"))],
    )
    try:
        result = (serve if module.params["mode"] == "serve" else fetch)(module.params)
    except (OSError, dir_stream.DirStreamError) as e:
        module.fail_json(msg=f"the output transfer failed: {e}")
    module.exit_json(changed=module.params["mode"] == "fetch" and result["skipped"] is None, **result)


if __name__ == "__main__":
    main()
