#!/usr/bin/python
"""Read which packages, services and GPUs a host has, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_state
short_description: Read which packages, services and GPUs a host has, in one call
version_added: 0.1.0
description:
  - Reads, and changes nothing, which of O(packages) dpkg has installed, whether each of
    O(services) is enabled and running under systemd, what C(nvidia-smi -L) lists and, with
    O(engine), the Docker engine's swarm state (as C(docker info) shows it; no join tokens) and
    the ID of each tagged image it holds, and,
    with O(daemon_config), Docker's C(daemon.json) with what each owner set in it.
  - The docker role calls it once per host at the start of the Docker play and installs,
    starts or lists only what is missing, so a re-run against a host that has everything asks
    it nothing more (no apt cache update, no service call, no second C(nvidia-smi), no second
    read of the swarm state, no C(daemon.json) step that would change nothing).
  - The result is the fact C(torchswarm_host), which the nvidia and swarm roles read.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
options:
  packages:
    description: Debian package names to look up.
    type: list
    elements: str
    default: []
  services:
    description: systemd units to look up.
    type: list
    elements: str
    default: []
  nvidia_smi:
    description: The C(nvidia-smi) to run with C(-L); empty, none is run.
    type: str
    default: ""
  engine:
    description:
      - Read the Docker engine's swarm state (C(docker info)) and its tagged images' IDs
        (C(docker image ls)) too.
      - The image role then asks a node for the training image's ID only where it is not
        among them.
    type: bool
    default: false
  daemon_config:
    description:
      - The path of Docker's C(daemon.json) to read, with what each owner of
        M(torchswarm.ddp.docker_daemon_config) recorded in O(record_dir); empty, none is read.
      - The docker and nvidia roles run that module only where the filter
        filter C(torchswarm.ddp.daemon_config_unchanged) says it would change something.
    type: path
    default: ""
  paths:
    description:
      - Paths to look at (the job's host path mounts); whether each exists, is a directory and can
        be read and written by the module's user.
    type: list
    elements: path
    default: []
  as_fact:
    description:
      - Return the state as the fact C(torchswarm_host). V(false) returns it as RV(host) instead
        and leaves that fact as it is (for a role reading one more thing later in the play, as the nvidia
        role reads which packages of the toolkit are installed).
    type: bool
    default: true
  facts:
    description:
      - Also return the few facts the roles read, with the names and meaning C(setup) gives
        them, so that a run needs no C(setup) call (one round trip per host less);
        C(nodename), C(default_ipv4.address) (the source address of the default IPv4 route),
        C(distribution) and C(distribution_release) (from C(/etc/os-release)), C(architecture),
        and C(service_mgr) where systemd runs.
      - The validate role reads them with the host's state once, at the start of the run.
    type: bool
    default: false
  record_dir:
    description: Where M(torchswarm.ddp.docker_daemon_config) records what each owner set (its O(record_dir)).
    type: path
    default: /var/lib/torchswarm/daemon-json
"""

EXAMPLES = r"""
- name: Read what this host has of Docker
  torchswarm.ddp.host_state:
    packages: [docker.io, python3-docker]
    services: [docker]
    nvidia_smi: nvidia-smi

- name: Install Docker only where a package is missing
  ansible.builtin.apt:
    name: [docker.io, python3-docker]
  when: torchswarm_host.packages.values() | select('eq', '') | list | length > 0
"""

RETURN = r"""
host:
  description: The host's state, as C(torchswarm_host) below.
  returned: when O(as_fact=false)
  type: dict
  sample: {packages: {nvidia-container-toolkit: 1.19.0-1}, services: {}}
ansible_facts:
  description: The host's state, as the fact C(torchswarm_host); with O(facts), also C(nodename),
    C(default_ipv4), C(distribution), C(distribution_release), C(architecture), C(service_mgr).
  returned: always
  type: dict
  sample: {nodename: node1, default_ipv4: {address: 10.0.0.11}, distribution: Debian,
           distribution_release: bookworm, architecture: x86_64, service_mgr: systemd}
  contains:
    torchswarm_host:
      description: The host's state.
      type: dict
      contains:
        packages:
          description: Each package's installed version; an empty string when it is not installed.
          type: dict
          sample: {docker.io: 20.10.24+dfsg1-1+deb12u1, python3-docker: ""}
        services:
          description: Each unit's state.
          type: dict
          sample: {docker: {enabled: true, active: true}}
        nvidia_smi:
          description: What C(nvidia-smi -L) said; C(rc) is 2 when it is not installed.
          type: dict
          returned: when O(nvidia_smi) is set
          sample: {rc: 0, stdout: "GPU 0: NVIDIA H100 (UUID: GPU-5eed...)", stderr: ""}
        swarm:
          description: The engine's swarm state (C(docker info)'s C(Swarm)); null when no engine answers.
          type: dict
          returned: when O(engine=true)
          sample: {NodeID: 2x9k..., LocalNodeState: active, ControlAvailable: true, RemoteManagers: []}
        images:
          description:
            - Each tagged image's ID, by C(name:tag) as C(docker image ls) prints it; null when
              no engine answers.
          type: dict
          returned: when O(engine=true)
          sample: {"torchswarm/trainer:latest": "sha256:2187bfb0f18c..."}
        paths:
          description: For each of O(paths), whether it exists, is a directory, is readable and writable.
          type: dict
          returned: when O(paths) is set
          sample: {/srv/datasets: {exists: true, directory: true, readable: true, writable: false}}
        daemon_config:
          description:
            - C(daemon.json)'s text (null when there is none) and each owner's record, by owner;
              null when one of them could not be read.
          type: dict
          returned: when O(daemon_config) is set
          sample:
            path: /etc/docker/daemon.json
            text: '{"log-driver": "local"}'
            records: {torchswarm.ddp.docker: '{"log-driver": "local"}'}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import RECORD_DIR
from ansible_collections.torchswarm.ddp.plugins.module_utils._host_state import read, read_system_facts

ARGUMENT_SPEC = {
    "packages": {"type": "list", "elements": "str", "default": []},
    "services": {"type": "list", "elements": "str", "default": []},
    "nvidia_smi": {"type": "str", "default": ""},
    "engine": {"type": "bool", "default": False},
    "daemon_config": {"type": "path", "default": ""},
    "record_dir": {"type": "path", "default": RECORD_DIR},
    "facts": {"type": "bool", "default": False},
    "as_fact": {"type": "bool", "default": True},
    "paths": {"type": "list", "elements": "path", "default": []},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params

    def run(argv: list[str]) -> tuple[int, str, str]:
        return module.run_command(argv, handle_exceptions=False)

    state = read(
        run,
        p["packages"],
        p["services"],
        p["nvidia_smi"],
        p["engine"],
        p["daemon_config"],
        p["record_dir"],
        p["paths"],
    )
    facts = read_system_facts(run) if p["facts"] else {}
    if not p["as_fact"]:
        module.exit_json(changed=False, host=state, ansible_facts=facts)
    module.exit_json(changed=False, ansible_facts={**facts, "torchswarm_host": state})


if __name__ == "__main__":
    main()
