#!/usr/bin/python
"""Stage a dataset on a training host: down a chain of hosts, checked by its digest."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: data_relay
short_description: Stage a dataset from the controller on training hosts, down a chain, checked
version_added: 0.1.0
description:
  - One end of the transfer of a dataset (C(job_data_src), a file or a directory on the controller)
    into a directory on each training host, over TCP, streamed and checked by its digest (of every
    file's path, size and sha256, as the C(torchswarm.ddp.data_digest) lookup computes it on the
    controller).
  - A host keeps the dataset below O(path) in a directory named by its digest
    (C(<path>/sha256-<hex>), what the ranks mount), which appears, in one rename, only once what
    arrived has that digest. Older versions are removed then; nothing else below O(path) is touched.
  - With O(mode=held), says whether O(path) already holds the dataset of O(digest), so that a
    re-run sends nothing.
  - With O(mode=receive) (usually C(async), C(poll=0)) the host listens on O(port) and takes the
    files, passing each chunk on to the next host of O(forward) as it arrives.
  - With O(mode=send), the host (the controller, or a host that holds the dataset) sends O(path)
    to the first host of O(forward), which passes it on to the rest.
  - A host down the chain that does not answer is routed around; one that fails or stalls
    mid-stream is left, and the host before it sends its own checked copy on to the hosts after
    it, which went back to listening. The failed host's own receive fails, saying why.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: partial
    details: O(mode=held) runs in check mode; the other modes change nothing there and say so.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: The job role runs O(mode=receive) only on hosts where O(mode=held) said the dataset is missing.
  platform:
    platforms: posix
options:
  mode:
    description: V(held), V(receive) or V(send).
    type: str
    choices: [held, receive, send]
    required: true
  path:
    description:
      - V(held) and V(receive), the host's dataset directory. V(send), the file or directory to
        send (on the controller, C(job_data_src); on a host, the version directory of the dataset).
    type: path
    required: true
  digest:
    description: The dataset's digest (C(sha256:...)); V(held) and V(receive).
    type: str
  forward:
    description:
      - The addresses of the hosts down the chain after this one, in order; V(send), the whole chain.
        Each listens on O(port).
    type: list
    elements: str
    default: []
  port:
    description: The TCP port receivers listen on.
    type: int
    default: 29650
  token:
    description: A secret made for this run's transfers; receivers refuse any other.
    type: str
  wait:
    description:
      - Seconds a receiver waits for its first sender; after a stream that broke off, at least
        this long again, up to O(limit).
    type: int
    default: 120
  limit:
    description:
      - V(receive), seconds the transfer may take in all. After a stream that broke off, the
        receiver waits for a sender again until then (the host before the failed one sends its own
        copy once that copy is complete).
    type: int
    default: 14400
  timeout:
    description:
      - Seconds a connection may stay silent before the hop counts as stalled (a host waits 5 s
        longer for each host after it down the chain, so that the one nearest a stall gives up first).
    type: int
    default: 60
  progress:
    description:
      - V(send), a file on the sending host where the bytes sent so far are written once a second
        while the transfer runs (removed when it ends), for P(torchswarm.ddp.relay_wait#module) to show.
    type: path
"""

EXAMPLES = r"""
- name: Say whether each training host holds this dataset
  torchswarm.ddp.data_relay:
    mode: held
    path: /var/lib/torchswarm/data/ddp
    digest: "{{ data_digest }}"
  register: data_held

- name: Listen for the dataset, passing it on down the chain
  torchswarm.ddp.data_relay:
    mode: receive
    path: /var/lib/torchswarm/data/ddp
    digest: "{{ data_digest }}"
    forward: [10.0.0.13, 10.0.0.14]
    token: "{{ data_token }}"
  async: 7200
  poll: 0

- name: Send it from the controller to the chain's first host
  torchswarm.ddp.data_relay:
    mode: send
    path: "{{ playbook_dir }}/datasets/imagenet-shards"
    forward: [10.0.0.12, 10.0.0.13, 10.0.0.14]
    token: "{{ data_token }}"
  delegate_to: localhost
"""

RETURN = r"""
held:
  description: V(held), whether O(path) holds the dataset of O(digest).
  returned: O(mode=held)
  type: bool
bytes:
  description: The dataset's bytes that crossed this host's connection.
  returned: O(mode=receive) and O(mode=send)
  type: int
  sample: 1073741824
seconds:
  description: From the file list to the last answer.
  returned: O(mode=receive) and O(mode=send)
  type: float
peer:
  description: O(mode=receive), the address the dataset came from.
  returned: O(mode=receive)
  type: str
forwarded_to:
  description: O(mode=receive), the host it passed the stream on to (address:port), empty at the chain's end.
  returned: O(mode=receive)
  type: str
sent_to:
  description: O(mode=send), the host that took the dataset.
  returned: O(mode=send)
  type: str
routed_around:
  description: The hosts this one routed around, each with why.
  returned: O(mode=receive) and O(mode=send)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _data_chain as data_chain,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _dir_stream as dir_stream,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _transfer_progress as transfer_progress,
)

ARGUMENT_SPEC = {
    "mode": {"type": "str", "choices": ["held", "receive", "send"], "required": True},
    "path": {"type": "path", "required": True},
    "digest": {"type": "str"},
    "forward": {"type": "list", "elements": "str", "default": []},
    "port": {"type": "int", "default": 29650},
    "token": {"type": "str", "no_log": True},
    "wait": {"type": "int", "default": 120},
    "timeout": {"type": "int", "default": 60},
    "limit": {"type": "int", "default": 14400},
    "progress": {"type": "path"},
}


def transfer(p: dict) -> dict:
    forward = [(address, p["port"]) for address in p["forward"]]
    if p["mode"] == "receive":
        return data_chain.receive(
            p["port"], p["token"], p["path"], p["digest"], forward, p["wait"], p["timeout"], p["limit"]
        )
    root, files = data_chain.listing(p["path"])
    with transfer_progress.recording(p["progress"], sum(f["size"] for f in files)) as progress:
        return data_chain.send(root, files, forward, p["token"], p["timeout"], progress)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[
            ("mode", "held", ("digest",)),
            ("mode", "receive", ("digest", "token")),
            ("mode", "send", ("forward", "token")),
        ],
        supports_check_mode=True,
    )
    p = module.params
    if p["mode"] == "held":
        module.exit_json(changed=False, held=data_chain.holds(p["path"], p["digest"]))
    if module.check_mode:
        module.exit_json(changed=p["mode"] == "receive", msg=f"check mode: would {p['mode']} the dataset")
    try:
        result = transfer(p)
    except (OSError, dir_stream.DirStreamError) as e:
        module.fail_json(msg=f"data_relay {p['mode']} of {p['path']} on port {p['port']}: {e}")
    module.exit_json(changed=p["mode"] == "receive", **result)


if __name__ == "__main__":
    main()
