"""Run a module's main() in-process, the way kubernetes.core's unit tests do.

exit_json and fail_json are patched to raise, so a test gets the result dict back.
"""

from __future__ import annotations

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
