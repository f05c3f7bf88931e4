#!/usr/bin/python
"""Merge keys into Docker's daemon.json without dropping keys that others set."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_config
short_description: Merge keys into Docker's daemon.json, keeping everyone else's
version_added: 0.1.0
description:
  - Sets the given keys in Docker's C(daemon.json) and keeps every other key, so that admins,
    this collection's roles and other tools can share the file. Nested objects such as
    C(runtimes) or C(log-opts) are merged key by key as well; lists and plain values are replaced.
  - Compares parsed JSON, not text, so re-formatting the file is not a change. Reports
    C(changed) only when the effective configuration differs; restart Docker on that.
  - Remembers what each O(owner) set (in O(record_dir)); a key that owner set before and no
    longer asks for is removed, as long as it still holds the value the owner set. Keys it never
    set are never removed.
  - Checks the keys it sets before writing (documented daemon.json keys, their JSON types, no
    API socket on plain TCP without C(tlsverify)), then has C(dockerd --validate) read the new
    file where the engine has that flag (Docker 23 and later); a file dockerd would refuse is
    never written.
  - Writes atomically (fsync, rename) through a symlink to the file it points to, with mode 0644.
author:
  - torchswarm maintainers (@torchswarm)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - torchswarm.ddp.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  path:
    description:
      - Where the daemon reads its configuration.
    type: path
    default: /etc/docker/daemon.json
  options:
    description:
      - The keys to set, as they appear in C(daemon.json).
    type: dict
    required: true
  owner:
    description:
      - Who sets these keys, for example the role's name. Each owner's keys are recorded apart,
        so two owners never remove each other's keys.
    type: str
    default: torchswarm.ddp.docker
  record_dir:
    description: Where the keys each owner set are recorded.
    type: path
    default: /var/lib/torchswarm/daemon-json
  validate:
    description: Have C(dockerd --validate) read the new file before it replaces the old one, where it can.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Rotate container logs, keeping whatever else daemon.json says
  torchswarm.ddp.docker_daemon_config:
    options:
      log-driver: json-file
      log-opts:
        max-size: 50m
        max-file: "5"
  notify: Restart docker

- name: Register a runtime next to any that are already there
  torchswarm.ddp.docker_daemon_config:
    options:
      runtimes:
        nvidia:
          path: nvidia-container-runtime
"""

RETURN = r"""
removed:
  description: Keys this owner had set and no longer asks for, now removed.
  returned: success
  type: list
  elements: str
  sample: [default-runtime]
config:
  description: The configuration after the merge (what the file holds, or would hold in check mode).
  returned: success
  type: dict
  sample: {"log-driver": "json-file", "max-concurrent-downloads": 4}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically, write_temp
from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import (
    RECORD_DIR,
    DaemonConfigError,
    check_daemon_options,
    merged_config,
    parse_daemon_config,
    record_path,
    render_daemon_config,
)


def read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""


def dockerd_refuses(module: AnsibleModule, candidate: str) -> str:
    """What ``dockerd --validate`` says is wrong with the file; empty when it accepts it or
    the engine has no such flag (before 23.0: the key check above is all there is)."""
    dockerd = module.get_bin_path("dockerd")
    if not dockerd:
        return ""
    rc, out, err = module.run_command([dockerd, "--validate", "--config-file", candidate])
    if rc == 0 or "unknown flag" in err:
        return ""
    return (err or out).strip()


class DaemonConfig:
    """daemon.json as one owner sees it: what is there, what it set before, what it wants."""

    def __init__(self, module: AnsibleModule) -> None:
        p = module.params
        self.module = module
        self.path = os.path.realpath(p["path"])  # write through a symlink, never replace it
        self.record = record_path(p["record_dir"], p["owner"])
        self.wanted = p["options"]
        self.current = parse_daemon_config(read_bytes(self.path), p["path"])
        previous = parse_daemon_config(read_bytes(self.record), self.record)
        self.merged = merged_config(self.current, previous, self.wanted)
        # The merge leaves keys not wanted as they are: one that changed was removed.
        self.removed = sorted(
            k for k, v in self.current.items() if k not in self.wanted and self.merged.get(k) != v
        )
        self.record_stale = previous != self.wanted

    def problems(self) -> list[str]:
        return check_daemon_options(self.wanted, tlsverify=self.merged.get("tlsverify") is True)

    def apply(self) -> None:
        """Write the merged file (checked by dockerd first) and the owner's record."""
        if self.merged != self.current:
            candidate = write_temp(self.path, render_daemon_config(self.merged))
            why = dockerd_refuses(self.module, candidate) if self.module.params["validate"] else ""
            if why:
                os.unlink(candidate)
                raise DaemonConfigError(f"dockerd refuses the new {self.path}, which was not written: {why}")
            self.module.atomic_move(candidate, self.path)
        if self.record_stale:
            write_atomically(self.record, json.dumps(self.wanted, sort_keys=True) + "\n")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "options": {"type": "dict", "required": True},
            "owner": {"type": "str", "default": "torchswarm.ddp.docker"},
            "record_dir": {"type": "path", "default": RECORD_DIR},
            "validate": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        config = DaemonConfig(module)
        problems = config.problems()
        if problems:
            raise DaemonConfigError(
                f"{config.path} was not changed; the keys to set have problems:\n"
                + "\n".join(f"- {p}" for p in problems)
            )
        changed = config.merged != config.current
        if not module.check_mode:
            config.apply()
    except DaemonConfigError as exc:
        module.fail_json(msg=str(exc))
    result = {"changed": changed, "config": config.merged, "removed": config.removed}
    if module._diff:
        result["diff"] = {
            "before": render_daemon_config(config.current) if os.path.exists(config.path) else "",
            "after": render_daemon_config(config.merged),
            "before_header": config.path,
            "after_header": config.path,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
