"""The training_stack module's ``job`` option, documented from the one declaration of the job's
options (module_utils/job_options.py)."""

import yaml

from ansible_collections.torchswarm.ddp.plugins.module_utils.job_options import (
    JOB_OPTIONS,
    ROLE_PREFIX,
    documented,
)


class ModuleDocFragment:
    DOCUMENTATION = yaml.safe_dump(
        {
            "options": {
                "job": {
                    "description": [
                        "What the job runs and how; required when O(state=present). In the"
                        " C(torchswarm.ddp.job) role each option is the variable of its name with"
                        f" C({ROLE_PREFIX}) in front (C({ROLE_PREFIX}epochs), ...).",
                    ],
                    "type": "dict",
                    "suboptions": documented(JOB_OPTIONS),
                }
            }
        },
        sort_keys=False,
    )
