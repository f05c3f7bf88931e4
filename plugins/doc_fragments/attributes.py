"""Attribute docs shared by this collection's modules."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  idempotent:
    description:
      - When run twice with the same arguments, the second run reports no change.
    support: full
"""

    # The manager's stack file, read by training_job_info and written by training_stack.
    STACK_DIR = r"""
options:
  stack_dir:
    description: Where the manager keeps the deployed stack file (mode 0600).
    type: path
    default: /var/lib/torchswarm/stacks
"""

    # A controller-side action plugin's attributes (check_mode and diff_mode are its own).
    ACTION = r"""
options: {}
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
"""
