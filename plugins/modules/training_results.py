#!/usr/bin/python
"""Documentation of the training_results action plugin (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: training_results
short_description: Keep a training run's metrics, logs, stack, summary and plots on the controller
version_added: 0.1.0
description:
  - Writes C(<dest>/<name>/<run>/) on the controller, where C(<run>) is the deployed stack's digest
    (C(run) in RV(summary)). It holds C(summary.json), C(metrics.jsonl), C(stack.json) (the deployed
    stack with job_env values hidden), C(logs/<service>.log) for every rank, and the plots
    C(loss.png) and C(throughput.png) (800 x 450), with restarts and world-size changes marked,
    and C(rank_speed.png), each rank's time per step by epoch.
  - The ranks' speed comes from the record each rank prints per epoch (C(torchswarm.report) or
    the bundled trainer); C(summary.json) names the stragglers, ranks O(straggler_ratio) times
    slower than the median rank for O(straggler_epochs) epochs in a row, with their hosts.
  - The metrics are the bundled trainer's C(metrics.jsonl) when O(metrics) holds one, else the
    records that rank 0 printed through C(torchswarm.report), read from O(logs). A script that
    reports nothing still gets a summary (world size, wall time, each rank's exit code and
    restarts, the last lines of rank 0's log) and no plots.
  - Plots need matplotlib on the controller; without it the task warns and writes the rest.
  - Each file is written only when its content differs, so a second run reports no change.
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
    details: Says what would be written and writes nothing.
  diff_mode:
    support: none
options:
  dest:
    description: The results directory on the controller.
    type: path
    required: true
  script:
    description: The script the job ran, for the summary. Empty, the one the deployed stack in O(info) runs.
    type: str
    default: ""
  info:
    description: The job's state as M(torchswarm.ddp.training_job_info) or
      M(torchswarm.ddp.training_job_wait) returns it.
    type: dict
    required: true
  metrics:
    description: The text of the trainer's C(metrics.jsonl), when it was read from a node.
    type: str
    default: ""
  completion:
    description: The job's completion record (host, world size, wall time), when it was read.
    type: dict
    default: {}
  logs:
    description:
      - Each rank's service log (C(docker service logs --timestamps --no-trunc), its stdout and
        stderr together in any order), by service name; the saved log is in time order.
      - Empty, those in O(info) (M(torchswarm.ddp.training_job_wait) returns them, and
        M(torchswarm.ddp.training_job_info) with C(logs=true)).
    type: dict
    default: {}
  plots:
    description: Draw the plots (needs matplotlib on the controller).
    type: bool
    default: true
  output:
    description:
      - What M(torchswarm.ddp.training_output) brought back of rank 0's output directory (its
        result), with C(node) and C(source), where it came from; C(summary.json) lists each
        file's path, size and sha256, or why the output stayed on the node.
    type: dict
    default: {}
  kept_only:
    description:
      - Write nothing; return the results already kept for the run in O(info) (RV(kept) says
        whether there are any of a complete run). A finished run's results do not change, so
        the job role reads no log again on a re-run whose run the controller keeps complete.
    type: bool
    default: false
  straggler_ratio:
    description: How many times the median rank's time per step makes a rank slow.
    type: float
    default: 1.5
  straggler_epochs:
    description: How many epochs in a row a slow rank is slow to be named a straggler.
    type: int
    default: 3
"""

EXAMPLES = r"""
- name: Keep the run's results on the controller
  torchswarm.ddp.training_results:
    dest: "{{ playbook_dir }}/torchswarm-results"
    name: ddp
    info: "{{ job_info }}"
    logs:
      ddp_node0: "{{ node0_log.stdout }}"
      ddp_node1: "{{ node1_log.stdout }}"
  run_once: true
"""

RETURN = r"""
path:
  description: The run's results directory.
  returned: always
  type: str
  sample: /home/ops/torchswarm-results/ddp/3f2a9c0d1e4b5a67
files:
  description: The files of the run's directory, relative to RV(path).
  returned: always
  type: list
  elements: str
  sample: [logs/ddp_node0.log, loss.png, metrics.jsonl, stack.json, summary.json, throughput.png]
written:
  description: The files written this time (would be written, in check mode).
  returned: always
  type: list
  elements: str
summary:
  description: The content of C(summary.json).
  returned: always
  type: dict
  sample: {job: ddp, run: 3f2a9c0d1e4b5a67, state: complete, world_size: 3, wall_s: 61.2}
lines:
  description: The summary as the few lines the job role prints.
  returned: always
  type: list
  elements: str
  sample: ["job ddp: 10 epochs, final loss 0.0213", "world size 3 on 3 nodes (cpu)"]
kept:
  description: With O(kept_only), whether the controller keeps this run's results, of a complete run.
  returned: when O(kept_only=true)
  type: bool
"""
