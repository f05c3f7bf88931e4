"""Run a module's main() in-process, the way kubernetes.core's unit tests do.

run_module patches exit_json and fail_json to raise, so a test gets the result dict back;
run_module_as_ansible_does keeps them, so what the module prints is what Ansible would receive
(no_log values masked by AnsibleModule itself).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from typing import Any
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.warnings import get_warning_messages
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    def __init__(self, result: dict[str, Any], failed: bool) -> None:
        super().__init__(result)
        self.result = result
        self.failed = failed


def run_module(main, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return (result, failed); a success's result carries the warnings the module gave."""

    def exit_json(self, **result):
        raise ModuleExit({**result, "warnings": list(get_warning_messages())}, failed=False)

    def fail_json(self, msg, **result):
        raise ModuleExit({"msg": msg, **result}, failed=True)

    with (
        patch_module_args(args),
        mock.patch.object(basic.AnsibleModule, "exit_json", exit_json),
        mock.patch.object(basic.AnsibleModule, "fail_json", fail_json),
    ):
        try:
            main()
        except ModuleExit as done:
            return done.result, done.failed
    raise AssertionError("the module returned without exit_json or fail_json")


def run_module_as_ansible_does(main, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Return (the JSON the module printed, its exit status), through the real exit_json and
    fail_json, which mask every no_log value before anything leaves the module."""
    out = io.StringIO()
    with patch_module_args(args), redirect_stdout(out):
        try:
            main()
        except SystemExit as done:
            return json.loads(out.getvalue()), int(done.code or 0)
    raise AssertionError("the module returned without exit_json or fail_json")
