"""Writes plugins/doc_fragments/job.py, the training_stack module's ``job`` option, from the one
declaration of the job's options (module_utils/_job_options.py): `make doc-fragment` after a job
option changes. The fragment is plain text because ansible-test's yamllint reads a fragment's
DOCUMENTATION as a literal; tests/unit/plugins/module_utils/test_job_options.py fails while the two differ."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import (
    JOB_OPTIONS,
    ROLE_PREFIX,
    documented,
)

FRAGMENT = Path(__file__).resolve().parents[2] / "plugins" / "doc_fragments" / "job.py"


def documentation() -> str:
    return yaml.safe_dump(
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
        width=80,
    )


def text() -> str:
    return (
        '"""The training_stack module\'s ``job`` option, written by tests/harness/job_doc_fragment.py\n'
        'from the one declaration of the job\'s options (module_utils/_job_options.py); do not edit."""\n'
        "\n\nclass ModuleDocFragment:\n"
        f'    DOCUMENTATION = r"""\n{documentation()}"""\n'
    )


if __name__ == "__main__":
    FRAGMENT.write_text(text())
    sys.exit(0)
