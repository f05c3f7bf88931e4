#!/usr/bin/python
"""Documentation of the training_job_wait action plugin (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_job_wait
short_description: Wait for a training job, printing its epochs and state changes as they happen
version_added: 0.1.0
description:
  - Polls M(torchswarm.ddp.training_job_info) on the host the task runs on (a swarm
    manager, by C(delegate_to)) until the job is V(complete), V(failed) or V(absent), or O(timeout)
    passes, then reads the job once more at once (one read can miss a node's last lines), with
    every rank's whole log (RV(logs)) for M(torchswarm.ddp.training_results) unless O(logs=false).
  - While it waits it prints, through Ansible's display, one line per epoch record that rank 0
    prints (the bundled trainer's, or a user's script's through C(torchswarm.report)) with the
    loss, samples/s, world size, time in and an estimate of the time left; a line when a host
    is lost or back and when the job's state changes; a line that names a rank much slower than
    the others (the straggler, from the speed each rank prints per epoch); and a status line
    after O(heartbeat) seconds without one. No retry messages.
  - It never fails on the job's state; the caller decides (the job role fails unless V(complete)).
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - torchswarm.ddp.attributes.action
  - torchswarm.ddp.attributes.job_name
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
options:
  timeout:
    description: Seconds to wait at most; the result says RV(timed_out) then.
    type: int
    default: 3600
  interval:
    description: Seconds between polls.
    type: float
    default: 2.0
  heartbeat:
    description: Seconds without a progress line after which a status line is printed.
    type: float
    default: 60.0
  epochs:
    description: The job's epoch count, for the time left when the records do not carry it.
    type: int
  stack_dir:
    description: Where the manager keeps the deployed stack file (as for M(torchswarm.ddp.training_stack)).
    type: path
  straggler_ratio:
    description:
      - A rank whose time per step (its own part, before the all-reduce, when the script calls
        C(torchswarm.ready())) is this many times the median rank's for O(straggler_epochs)
        epochs in a row is named in a progress line, with its host, and in RV(stragglers).
    type: float
    default: 1.5
  straggler_epochs:
    description: How many epochs in a row a rank must be slow to be named.
    type: int
    default: 3
  logs:
    description:
      - Read every rank's whole log once the wait ends. V(false) when the run's results are
        kept already (the job role's idle re-run), so a long run's logs are not read again.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Wait for the job, printing its progress
  torchswarm.ddp.training_job_wait:
    name: ddp
    timeout: 7200
    epochs: 10
  delegate_to: "{{ groups['torchswarm_manager'][0] }}"
  run_once: true
  register: job_info
"""

RETURN = r"""
state:
  description: The job's state at the end, as M(torchswarm.ddp.training_job_info) returns it.
  returned: always
  type: str
  sample: complete
services:
  description: The services' rows at the end, as M(torchswarm.ddp.training_job_info) returns them.
  returned: always
  type: list
  elements: dict
lost:
  description: The services of ranks whose node is down or gone.
  returned: always
  type: list
  elements: str
training_hosts:
  description: How many ranks' services run on a node that is up.
  returned: always
  type: int
task_ids:
  description: The IDs of every task of the current deployment.
  returned: always
  type: list
  elements: str
stack:
  description: The deployed stack with the values of job_env hidden.
  returned: always
  type: dict
stack_hash:
  description: The digest of the deployed stack (the run).
  returned: always
  type: str
logs:
  description:
    - Every rank's whole log of this run, by service, as M(torchswarm.ddp.training_job_info) returns
      it with O(torchswarm.ddp.training_job_info#module:logs=true), read once the wait ended.
  returned: when O(logs=true)
  type: dict
progress:
  description: The lines printed while waiting (the last 500).
  returned: always
  type: list
  elements: str
  sample:
    - "job running: 3 of 3 hosts up"
    - "training at world size 3"
    - "epoch 1/10, loss 1.02, 950 samples/s, world size 3, 9 s in, about 1 min 21 s left"
waited_s:
  description: Seconds waited.
  returned: always
  type: float
  sample: 92.4
timed_out:
  description: Whether O(timeout) passed before the job ended.
  returned: always
  type: bool
stragglers:
  description:
    - The ranks named as stragglers while waiting; each with its host, its worst time per step over
      the median rank's, its longest run of slow epochs and whether it was slow still at the end.
  returned: always
  type: list
  elements: dict
  sample:
    - {rank: 2, host: node3, times_median: 2.4, epochs: 5, slow_at_end: true}
"""
