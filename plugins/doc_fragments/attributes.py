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

    # The job's name, which every module and action about one job takes (module_utils/_job_options.py's
    # JOB_NAME; the job role's job_name).
    JOB_NAME = r"""
options:
  name:
    description:
      - The job's stack name, C(job_name) in the C(torchswarm.ddp.job) role; its services are
        C(<name>_<inventory host>), its snapshot volume C(<name>-snapshots).
    type: str
    default: ddp
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
