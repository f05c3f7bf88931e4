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
  - Writes atomically and keeps the file's mode.
author:
  - torchswarm maintainers
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
config:
  description: The configuration after the merge (what the file holds, or would hold in check mode).
  returned: success
  type: dict
  sample: {"log-driver": "json-file", "max-concurrent-downloads": 4}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils.daemon_config import (
    DaemonConfigError,
    merge_daemon_config,
    parse_daemon_config,
    render_daemon_config,
)


def read_text(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def write_atomically(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    module.atomic_move(tmp, path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "options": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        current = parse_daemon_config(read_text(path), path)
    except DaemonConfigError as exc:
        module.fail_json(msg=str(exc))
    merged = merge_daemon_config(current, module.params["options"])
    changed = merged != current
    result = {"changed": changed, "config": merged}
    if module._diff:
        before = render_daemon_config(current) if os.path.exists(path) else ""
        result["diff"] = {
            "before": before,
            "after": render_daemon_config(merged),
            "before_header": path,
            "after_header": path,
        }
    if changed and not module.check_mode:
        write_atomically(module, path, render_daemon_config(merged))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
