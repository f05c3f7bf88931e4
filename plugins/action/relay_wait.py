"""Wait for a transfer's async job on the host that sends, printing how far it has got."""

from __future__ import annotations

import base64
import posixpath
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.torchswarm.ddp.plugins.module_utils import _transfer_progress as transfer_progress

display = Display()

# A key of a finished job's result in its async results file; the file holds only
# {"started": 1, "finished": 0, "ansible_job_id": ...} while the job runs.
FINISHED = r'"(changed|failed|msg|rc)"\s*:'

ARGUMENT_SPEC = {
    "jid": {"type": "str", "required": True},
    "what": {"type": "str", "required": True},
    "progress": {"type": "str"},
    "every": {"type": "float", "default": 15.0},
    "timeout": {"type": "int", "default": 3600},
    "interval": {"type": "float", "default": 1.0},
}


class ActionModule(ActionBase):
    """Waits for the async job ``jid`` on the host the task runs on: between two reads of its
    status (async_status), one wait_for there watches the job's results file until it holds a
    result or the next progress line is due, so the host runs a few modules per line rather than
    one a second, and the end is seen within a second. Every ``every`` seconds it reads the
    sender's progress file there and prints one line. Returns the job's result."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        # Where async jobs write their results, as ansible.builtin.async_status finds it.
        async_dir = self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))
        started = time.monotonic()
        shown = started
        record = None  # the last one read: the sender removes its file as the transfer ends
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
                record = self._read(args["progress"], task_vars) or record
                display.display(transfer_progress.line(args["what"], record, waited))
                shown = time.monotonic()
            due = shown + args["every"] if args["progress"] else time.monotonic() + args["every"]
            until = min(due, started + args["timeout"]) - time.monotonic()
            self._watch(posixpath.join(async_dir, args["jid"]), until, args["interval"], task_vars)
        for key in ("invocation", "started", "finished", "results_file", "ansible_job_id"):
            status.pop(key, None)
        return {**result, **status, "waited_s": round(waited, 1)}

    def _watch(self, results_file: str, seconds: float, interval: float, task_vars) -> None:
        """Return once the job's results file holds a result, or after ``seconds``; never
        sooner than ``interval`` (where the file cannot be watched, that is the poll)."""
        begun = time.monotonic()
        # wait_for counts whole seconds and starts in about one: a wait shorter than two is left
        # to the poll, so that lines come when they are due.
        if seconds >= 2:
            self._execute_module(
                module_name="ansible.legacy.wait_for",
                module_args={"path": results_file, "search_regex": FINISHED, "timeout": int(seconds) - 1},
                task_vars=task_vars,
            )
        time.sleep(max(0.0, interval - (time.monotonic() - begun)))

    def _read(self, path: str, task_vars) -> dict | None:
        answer = self._execute_module(
            module_name="ansible.legacy.slurp", module_args={"src": path}, task_vars=task_vars
        )
        if answer.get("failed"):
            return None  # not written yet
        return transfer_progress.parse(base64.b64decode(answer["content"]).decode("utf-8", "replace"))
