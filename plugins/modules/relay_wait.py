#!/usr/bin/python
"""Documentation of the relay_wait action plugin (it runs on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: relay_wait
short_description: Wait for an image or dataset transfer, printing how far it has got
version_added: 0.1.0
description:
  - Waits for the async job O(jid) on the host the task runs on (the sender, by C(delegate_to)),
    as M(ansible.builtin.async_status) would, and returns that job's result.
  - While it waits it prints, every O(every) seconds, one line read from the sender's
    O(progress) file (written by M(torchswarm.ddp.image_relay) and M(torchswarm.ddp.data_relay)
    with their C(progress) option) with the bytes sent, of how many, and the rate. No retry
    messages.
  - Between two reads of the job's status, one M(ansible.builtin.wait_for) on that host watches the
    job's results file until it holds a result or the next line is due. The host runs a module
    about every O(every) seconds, not every second, and the end is seen within a second.
  - It fails when the job failed, or when O(timeout) passes first (the job is left running).
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - torchswarm.ddp.attributes.action
attributes:
  check_mode:
    support: none
    details: The transfer it waits for does not run in check mode.
  diff_mode:
    support: none
options:
  jid:
    description: The async job's ID (C(ansible_job_id) of a task run with C(async) and C(poll=0)).
    type: str
    required: true
  what:
    description: What moves, to begin each line with.
    type: str
    required: true
  progress:
    description: The progress file the sending module writes on the host; without it, no lines.
    type: str
  every:
    description: Seconds between progress lines.
    type: float
    default: 15.0
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 3600
  interval:
    description:
      - The least time between two reads of the job's status (the poll where its results file
        cannot be watched).
    type: float
    default: 1.0
"""

EXAMPLES = r"""
- name: Send the image, in the background
  torchswarm.ddp.image_relay:
    mode: send
    image: torchswarm/trainer:latest
    image_id: "{{ image_id }}"
    address: 10.0.0.11
    token: "{{ image_token }}"
    progress: ~/.cache/torchswarm/transfers/image-node1.json
  async: 900
  poll: 0
  register: image_send

- name: Wait for it, printing its progress
  torchswarm.ddp.relay_wait:
    jid: "{{ image_send.ansible_job_id }}"
    what: image to node1
    progress: ~/.cache/torchswarm/transfers/image-node1.json
"""

RETURN = r"""
waited_s:
  description: Seconds waited.
  returned: success
  type: float
  sample: 41.5
msg:
  description: Why it failed (the job's own message, or the timeout).
  returned: failure
  type: str
"""
