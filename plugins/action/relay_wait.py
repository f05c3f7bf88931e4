"""Wait for a transfer's async job on the host that sends, printing how far it has got."""

from __future__ import annotations

import base64
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.torchswarm.ddp.plugins.module_utils import transfer_progress

display = Display()

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "what": {"type": "str", "required": True},
    "progress": {"type": "str"},
    "every": {"type": "float", "default": 15.0},
    "timeout": {"type": "int", "default": 3600},
    "interval": {"type": "float", "default": 1.0},
}


class ActionModule(ActionBase):
    """Polls async_status for ``jid`` on the host the task runs on; every ``every`` seconds,
    reads the sender's progress file there and prints one line. Returns the job's result."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        # Where async jobs write their results, as ansible.builtin.async_status finds it.
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        started = time.monotonic()
        shown = started
        while True:
            status = self._execute_module(
                module_name="ansible.legacy.async_status",
                module_args={"jid": args["jid"], "_async_dir": async_dir},
                task_vars=task_vars,
            )
            waited = time.monotonic() - started
            if status.get("finished") or status.get("failed"):
                break
            if waited >= args["timeout"]:
                return {
                    **result,
                    "failed": True,
                    "msg": f"{args['what']}: not done after {args['timeout']} s",
                }
            if args["progress"] and time.monotonic() - shown >= args["every"]:
                display.display(
                    transfer_progress.line(args["what"], self._read(args["progress"], task_vars), waited)
                )
                shown = time.monotonic()
            time.sleep(args["interval"])
        for key in ("invocation", "started", "finished", "results_file", "ansible_job_id"):
            status.pop(key, None)
        return {**result, **status, "waited_s": round(waited, 1)}

    def _read(self, path: str, task_vars) -> dict | None:
        answer = self._execute_module(
            module_name="ansible.legacy.slurp", module_args={"src": path}, task_vars=task_vars
        )
        if answer.get("failed"):
            return None  # not written yet
        return transfer_progress.parse(base64.b64decode(answer["content"]).decode("utf-8", "replace"))
