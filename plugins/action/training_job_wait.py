"""Wait for a training job on the controller, printing its progress instead of retries."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_NAME
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._rank_speed import Stragglers
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._watch import Watch

display = Display()

ARGUMENT_SPEC = {
    "name": {"type": "str", "default": JOB_NAME},
    "timeout": {"type": "int", "default": 3600},
    "interval": {"type": "float", "default": 2.0},
    "heartbeat": {"type": "float", "default": 60.0},
    "epochs": {"type": "int"},
    "stack_dir": {"type": "path"},
    "straggler_ratio": {"type": "float", "default": 1.5},
    "straggler_epochs": {"type": "int", "default": 3},
    "logs": {"type": "bool", "default": True},
}
FINAL = ("complete", "failed", "absent")
KEPT_LINES = 500  # the result's progress: the last lines, for a job that ran for days


class ActionModule(ActionBase):
    """Polls torchswarm.ddp.training_job_info on the host the task runs on (a manager) and prints
    one line per new epoch record, state change or quiet minute through Ansible's display."""

    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        watch = Watch(
            epochs=args["epochs"],
            heartbeat=args["heartbeat"],
            stragglers=Stragglers(ratio=args["straggler_ratio"], epochs=args["straggler_epochs"]),
        )
        module_args = {"name": args["name"], "logs_since": ""}
        if args["stack_dir"]:
            module_args["stack_dir"] = args["stack_dir"]
        started, last_read = time.monotonic(), False
        while True:
            info = self._execute_module(
                module_name="torchswarm.ddp.training_job_info", module_args=module_args, task_vars=task_vars
            )
            if info.get("failed"):
                return {**result, **info}
            module_args["logs_since"] = info.pop("logs_until")
            for line in watch.update(info, info.pop("records"), time.monotonic()):
                display.display(f"{args['name']}: {line}")
            waited = time.monotonic() - started
            if last_read:
                break
            if info["state"] in FINAL or waited >= args["timeout"]:
                # Once more at once, with every rank's whole log for the results if asked: one
                # read can miss a remote node's last lines (moby#33183).
                module_args["logs"] = args["logs"]
                last_read = True
                continue
            time.sleep(min(args["interval"], max(args["timeout"] - waited, 0)))
        info.pop("invocation", None)
        return {
            **result,
            **info,
            "changed": False,
            "waited_s": round(waited, 1),
            "timed_out": info["state"] not in FINAL,
            "progress": watch.lines[-KEPT_LINES:],
            "stragglers": watch.stragglers.found(),
        }
