#!/usr/bin/python
"""Push an image from the local engine to its registry, the password sent with the request."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_push
short_description: Push an image to a registry without storing the registry password
version_added: 0.1.0
description:
  - Pushes O(name) from the local Docker engine (its unix socket; C(DOCKER_HOST) when it names one)
    to the registry in its name.
  - The credentials go to the engine in the request's C(X-Registry-Auth) header, the way
    C(docker push) sends what C(docker login) stored; here nothing is stored, so the password never
    reaches the disk of the host that pushes (the controller).
  - The engine must trust the registry's certificate (C(/etc/docker/certs.d/<registry>/ca.crt)).
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
  platform:
    platforms: posix
options:
  name:
    description: The image, as C(registry[:port]/path[:tag]).
    type: str
    required: true
  registry_url:
    description: The registry the credentials are for; empty means the registry part of O(name).
    type: str
    default: ""
  username:
    description: Registry user; empty means push without credentials.
    type: str
    default: ""
  password:
    description: Registry password or token.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Push the image the controller built
  torchswarm.ddp.image_push:
    name: registry.example.com:5000/team/trainer:1.0
    username: ci
    password: "{{ vault_registry_password }}"
  delegate_to: localhost
"""

RETURN = r"""
digest:
  description: The manifest digest the registry holds now.
  returned: success
  type: str
  sample: sha256:4c62fe9c9e5267abd4294e0b4d3c60fae8fa35a17e97506a5bdbf5396eaddd9e
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.torchswarm.ddp.plugins.module_utils._engine_push import (
    PushError,
    auth_header,
    push,
    registry_of,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "registry_url": {"type": "str", "default": ""},
            "username": {"type": "str", "default": ""},
            "password": {"type": "str", "default": "", "no_log": True},
        }
    )
    p = module.params
    server = p["registry_url"] or registry_of(p["name"])
    auth = auth_header(p["username"], p["password"], server) if p["username"] else None
    try:
        result = push(p["name"], auth)
    except (PushError, OSError) as exc:
        message = str(exc).replace(p["password"], "<hidden>") if p["password"] else str(exc)
        module.fail_json(msg=f"push of {p['name']} to {server} failed: {message}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
