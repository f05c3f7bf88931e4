"""The default another role of this collection gives a variable, so that a role whose variable
follows it (the job's image follows the image role's image_name) writes no second copy."""

from __future__ import annotations

DOCUMENTATION = r"""
name: role_default
short_description: The default that another role of this collection gives a variable
version_added: 0.2.0
description:
  - Returns the value that C(roles/ROLE/defaults/main.yml) of this collection gives each variable
    named, as written there.
  - A role's variable that follows another role's falls back to that role's own default this way
    (the job role's C(job_image) is C(image_name), else what the image role gives C(image_name)),
    so each default is written once, in the role that owns the variable.
options:
  _terms:
    description: The variables.
    required: true
    type: list
    elements: str
  role:
    description: The role of this collection whose defaults are read (C(image), C(network), ...).
    required: true
    type: str
"""

EXAMPLES = r"""
- name: The job's image, as the image role has it when the inventory does not say
  ansible.builtin.debug:
    msg: "{{ image_name | default(lookup('torchswarm.ddp.role_default', 'image_name', role='image')) }}"
"""

RETURN = r"""
_raw:
  description: Each variable's default, in the order named.
  type: list
  elements: raw
"""

from pathlib import Path

import yaml
from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

ROLES = Path(__file__).resolve().parents[2] / "roles"


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        role = self.get_option("role")
        path = ROLES / role / "defaults" / "main.yml"
        if not path.is_file():
            raise AnsibleLookupError(
                f"role_default: this collection has no role {role} with defaults ({path})"
            )
        defaults = yaml.safe_load(path.read_text()) or {}
        missing = [name for name in terms if name not in defaults]
        if missing:
            raise AnsibleLookupError(f"role_default: role {role} gives no default for {', '.join(missing)}")
        return [defaults[name] for name in terms]
