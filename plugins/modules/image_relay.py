#!/usr/bin/python
"""Stream a Docker image from one engine to another over TCP, checked by its image ID."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_relay
short_description: Stream a Docker image from a host that holds it to one that does not
version_added: 0.1.0
description:
  - One end of an image transfer between two Docker engines, over one TCP connection, with no
    archive written to disk. The receiving host runs it with O(mode=receive) (usually with
    C(async), C(poll=0)) and listens on O(port); the sending host (a node that holds the image,
    or the controller) runs it with O(mode=send), pipes C(docker save) (and C(zstd)) into the
    connection and waits for the receiver's answer.
  - The receiver loads the stream with C(docker load) and answers only once O(image) names
    O(image_id) on its engine; a sender that presents a wrong O(token) is refused, since a
    loaded archive could retag any image on the host.
  - Layers the receiver's engine already holds (the same layer on top of the same layers, as an
    image built FROM one the host has shares them) are left out of the stream; C(docker load)
    takes them from the engine. An engine that keeps its images in containerd is sent every
    layer.
  - With O(forward), a receiver is one link of a chain; it passes the stream on, as it arrives
    (while loading it itself), to the first receiver of O(forward) that answers, so that a chain
    of hosts holds the image in about the time one transfer takes; a receiver down the chain that
    does not answer is routed around (RV(routed_around)). It answers its sender once the next
    host has answered it, and fails when passing the stream on broke off (after loading the image
    itself).
  - The torchswarm.ddp.image role runs it along the plan its C(image_fanout) names (a chain by
    default).
  - Needs the C(docker) CLI, and C(zstd) when O(compression=zstd), on both hosts.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  idempotent:
    support: none
    details: The image role runs it only for hosts whose engine lacks O(image_id).
  platform:
    platforms: posix
options:
  mode:
    description: Which end of the transfer this host is.
    type: str
    choices: [receive, send]
    required: true
  image:
    description: The image's name as both engines know it (the archive carries this tag).
    type: str
    required: true
  image_id:
    description: The image ID the receiver must hold afterwards (C(sha256:...)).
    type: str
    required: true
  address:
    description: The receiver's address. Required with O(mode=send).
    type: str
  forward:
    description:
      - With O(mode=receive), the addresses of the receivers after this one down a chain, in order
        (each listening on O(port)), to pass the stream on to as it arrives. Empty, none.
    type: list
    elements: str
    default: []
  port:
    description: The TCP port the receiver listens on.
    type: int
    default: 29600
  token:
    description: A secret both ends share for this transfer (make a fresh one per run).
    type: str
    required: true
  compression:
    description: V(zstd) makes a CUDA or torch image about 2.4 times smaller on the wire.
    type: str
    choices: [zstd, none]
    default: zstd
  wait:
    description: Seconds the receiver waits for a sender, and a sender tries to connect.
    type: int
    default: 120
  timeout:
    description: Seconds either end waits on a silent connection before giving up.
    type: int
    default: 300
  progress:
    description:
      - V(send), a file on the sending host where the bytes sent so far are written once a second
        while the stream runs (removed when it ends), for P(torchswarm.ddp.relay_wait#module) to show.
    type: path
"""

EXAMPLES = r"""
- name: Listen for the image
  torchswarm.ddp.image_relay:
    mode: receive
    image: torchswarm/trainer:latest
    image_id: "{{ image_id }}"
    token: "{{ relay_token }}"
  async: 3600
  poll: 0
  register: receiver

- name: Send it from a host that holds it
  torchswarm.ddp.image_relay:
    mode: send
    image: torchswarm/trainer:latest
    image_id: "{{ image_id }}"
    address: 10.0.0.12
    token: "{{ relay_token }}"
  delegate_to: node0
"""

RETURN = r"""
bytes:
  description: Bytes that crossed the connection (compressed when O(compression=zstd)).
  returned: success
  type: int
  sample: 607088746
seconds:
  description: From the first byte to the receiver's answer (on the receiver, to its ID check).
  returned: success
  type: float
  sample: 11.4
mb_per_s:
  description: RV(bytes) over RV(seconds), in MB/s.
  returned: success
  type: float
  sample: 53.2
peer:
  description: The other end's address.
  returned: success
  type: str
  sample: 10.0.0.11
layers:
  description: The image's layers.
  returned: success
  type: int
  sample: 14
layers_held:
  description: Layers the receiver held already, which were not sent.
  returned: success
  type: int
  sample: 12
first_byte:
  description: When the first byte of the stream arrived (seconds since the epoch); 0 on a sender.
  returned: success
  type: float
  sample: 1796381234.512
last_byte:
  description: When the stream ended (seconds since the epoch); 0 on a sender.
  returned: success
  type: float
  sample: 1796381245.907
forwarded_to:
  description: The address and port the receiver passed the stream on to (O(forward)); empty when none.
  returned: success
  type: str
  sample: 10.0.0.13:29600
routed_around:
  description: The receivers of O(forward) that did not answer and were passed over, each with why.
  returned: success
  type: list
  elements: str
  sample: ["10.0.0.13:29600 (cannot connect to 10.0.0.13:29600 within 10 s: timed out)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils import _transfer_progress as transfer_progress
from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._image_stream import StreamError, receive, send

ARGUMENT_SPEC = {
    "mode": {"type": "str", "choices": ["receive", "send"], "required": True},
    "image": {"type": "str", "required": True},
    "image_id": {"type": "str", "required": True},
    "address": {"type": "str"},
    "forward": {"type": "list", "elements": "str", "default": []},
    "port": {"type": "int", "default": 29600},
    "token": {"type": "str", "required": True, "no_log": True},
    "compression": {"type": "str", "choices": ["zstd", "none"], "default": "zstd"},
    "wait": {"type": "int", "default": 120},
    "timeout": {"type": "int", "default": 300},
    "progress": {"type": "path"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=[("mode", "send", ["address"])])
    p = module.params
    docker = DockerCli(module)
    common = (p["port"], p["token"], p["image_id"], p["image"], p["compression"], p["wait"], p["timeout"])
    try:
        if p["mode"] == "receive":
            transfer = receive(docker, *common, forward=[(address, p["port"]) for address in p["forward"]])
        else:
            with transfer_progress.recording(p["progress"]) as progress:
                transfer = send(docker, p["address"], *common, progress=progress)
    except (StreamError, DockerCliError, OSError) as exc:
        module.fail_json(msg=f"image_relay {p['mode']} of {p['image']} on port {p['port']}: {exc}")
    module.exit_json(changed=p["mode"] == "receive", **transfer.as_dict())


if __name__ == "__main__":
    main()
