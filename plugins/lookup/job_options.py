"""The job options set among the task's variables (job_<option>), as one dict for training_stack."""

from __future__ import annotations

DOCUMENTATION = r"""
name: job_options
short_description: The training job's options set among the task's variables, as one dict
version_added: 0.1.0
description:
  - Returns the options of O(torchswarm.ddp.training_stack#module:job) whose variable is set and
    not null, as one dict of option to value; an option's variable is its name with C(job_) in
    front (C(job_epochs) for C(epochs)). The module fills in the defaults of the rest.
  - The job role passes the job to M(torchswarm.ddp.training_stack) this way, so each option is
    declared once, in the module.
options: {}
"""

EXAMPLES = r"""
- name: Deploy the job as the variables describe it
  torchswarm.ddp.training_stack:
    name: "{{ job_name }}"
    job: "{{ lookup('torchswarm.ddp.job_options') }}"
    nodes: "{{ training_nodes }}"
"""

RETURN = r"""
_raw:
  description: One dict of option name to value.
  type: list
  elements: dict
"""

from ansible.plugins.lookup import LookupBase

from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import (
    JOB_OPTIONS,
    ROLE_PREFIX,
    from_variables,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        names = [ROLE_PREFIX + name for name in JOB_OPTIONS if ROLE_PREFIX + name in (variables or {})]
        # Variables arrive as written (a role default may be a template): template what is used.
        values = {name: self._templar.template(variables[name]) for name in names}
        return [from_variables(values)]
