#!/usr/bin/python
"""Check a torchswarm.ddp inventory across hosts before any host is changed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: validate_inventory
short_description: Check a swarm inventory across hosts before anything changes
version_added: 0.1.0
description:
  - Makes the checks that span hosts and that no single host's argument spec can make; the
    C(torchswarm.ddp.validate) role runs it once, on the controller, before any other play.
  - Fails with one line per problem, each naming the host and the variable, and warns about
    choices that work but are fragile (an even number of managers).
  - Changes nothing, anywhere.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  managers:
    description:
      - The hosts of the C(managers) group, in inventory order. The first one initialises the swarm.
    type: list
    elements: str
    required: true
  workers:
    description:
      - The hosts of the C(workers) group.
    type: list
    elements: str
    default: []
  nodes:
    description:
      - For each host of both groups, a dict with C(hostname) (the node's hostname, which swarm
        placement constraints use), C(advertise_addr) and C(state) (V(present) or V(absent)), and
        for training C(training) (whether it runs a service), C(node_rank) and C(nproc_per_node).
        Training ranks must have no duplicates or gaps. C(daemon_options), the host's
        C(docker_daemon_options), is checked as the daemon.json module would check it, and
        C(job), the job options set for the host (P(torchswarm.ddp.job_options#lookup)), as the
        stack module's argument spec would. C(pins), the host's C(docker_version) and
        C(nvidia_toolkit_version) by name, must be package versions apt takes (or empty);
        C(docker_drift), the engine's packages installed at another version than C(docker_version),
        is warned about, naming the host and the maintenance.yml command that upgrades it.
      - C(reachable) (default true) and C(unreachable_msg) say whether the host answered. One
        that does not is an error unless it is marked absent; then it is listed in RV(gone).
      - C(swarm_locked) (its manager is locked, as autolock leaves it after Docker restarted) is
        an error unless C(unlock_key) says that C(swarm_unlock_key) is given for the host.
    type: dict
    required: true
  network_subnet:
    description:
      - The overlay network's subnet as the first manager sees it, checked to be a CIDR network.
    type: str
  image:
    description:
      - The first manager's C(image_name), which C(job_image) defaults to; the job's image is
        checked to be a valid image name.
    type: str
  job:
    description:
      - The C(job_*) variables set for the first manager (those of C(torchswarm.ddp.job)), checked
        as M(torchswarm.ddp.training_stack) would check its O(torchswarm.ddp.training_stack#module:job)
        before deploy, types included, each error naming the variable. C(job_secrets) does not
        belong here.
    type: dict
    default: {}
  secret_names:
    description: The names (not the values) of C(job_secrets), checked to be environment variable names.
    type: list
    elements: str
    default: []
  script_files:
    description:
      - The paths of the files of C(job_script_src) (the P(torchswarm.ddp.script_files#lookup)
        lookup's keys), checked to hold C(job_script) and to stay below the working directory.
    type: list
    elements: str
    default: []
  data_digest:
    description:
      - The digest of C(job_data_src) when a dataset is staged (the P(torchswarm.ddp.data_digest#lookup)
        lookup's), with which C(job_data_target) is checked against the job's other mounts.
    type: str
    default: ""
  swarm_cert_expiry:
    description:
      - The first manager's C(swarm_cert_expiry), a duration such as V(2160h) of at least an hour.
    type: str
    default: ""
  numbers:
    description:
      - The first manager's whole-number settings of the roles that are set, variable -> value,
        each checked by how its name ends; C(_port) between 1 and 65535, C(_timeout), C(_limit),
        C(_interval), C(_every) and C(_max) at least 1, C(_mtu) V(0) (Docker's) or between 68 and 65535.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Check the inventory across hosts
  torchswarm.ddp.validate_inventory:
    managers: "{{ groups['managers'] | default([]) }}"
    workers: "{{ groups['workers'] | default([]) }}"
    nodes:
      node0: {hostname: node0, advertise_addr: 10.0.0.10, state: present}
      node1: {hostname: node1, advertise_addr: 10.0.0.11, state: present}
    network_subnet: 10.42.0.0/16
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
manager:
  description: The manager every later play talks to, the first host of C(managers) that stays and answers.
  returned: success
  type: str
  sample: node0
gone:
  description: Hosts marked C(swarm_node_state=absent) that do not answer; a manager removes them.
  returned: success
  type: list
  elements: str
  sample: [node2]
errors:
  description: Every problem found; the module fails when there is one.
  returned: always
  type: list
  elements: str
  sample: ["host node1: swarm_advertise_addr '10.0.0.300' is not an IP address"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._inventory import check_inventory


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "managers": {"type": "list", "elements": "str", "required": True},
            "workers": {"type": "list", "elements": "str", "default": []},
            "nodes": {"type": "dict", "required": True},
            "network_subnet": {"type": "str"},
            "image": {"type": "str"},
            "job": {"type": "dict", "default": {}},
            # Names only, never values.
            "secret_names": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "script_files": {"type": "list", "elements": "str", "default": []},
            "data_digest": {"type": "str", "default": ""},
            "swarm_cert_expiry": {"type": "str", "default": ""},
            "numbers": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    report = check_inventory(**p)
    for warning in report.warnings:
        module.warn(warning)
    if report.errors:
        module.fail_json(
            msg="The inventory has problems; nothing was changed on any host:\n"
            + "\n".join(f"- {e}" for e in report.errors),
            errors=report.errors,
        )
    module.exit_json(changed=False, errors=[], manager=report.manager, gone=report.gone)


if __name__ == "__main__":
    main()
