"""Keep a waited run's results on the controller: metrics, every rank's log, the stack, a
summary and plots, in <dest>/<job>/<run>/."""

from __future__ import annotations

import json
import os

from ansible.plugins.action import ActionBase

from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically
from ansible_collections.torchswarm.ddp.plugins.module_utils._job import metrics_records, run_dir_name
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import JOB_NAME
from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import log_records
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import script_of
from ansible_collections.torchswarm.ddp.plugins.plugin_utils import _plots as plots
from ansible_collections.torchswarm.ddp.plugins.plugin_utils import _rank_speed as rank_speed
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._results import (
    as_printed,
    in_time_order,
    log_text,
    of_tasks,
    records_text,
    refusals,
    run_summary,
    summary_lines,
)

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "name": {"type": "str", "default": JOB_NAME},
    "script": {"type": "str", "default": ""},
    "info": {"type": "dict", "required": True},
    "metrics": {"type": "str", "default": ""},
    "completion": {"type": "dict", "default": {}},
    "logs": {"type": "dict", "default": {}},
    "plots": {"type": "bool", "default": True},
    "kept_only": {"type": "bool", "default": False},
    "output": {"type": "dict", "default": {}},
    "straggler_ratio": {"type": "float", "default": 1.5},
    "straggler_epochs": {"type": "int", "default": 3},
}
PLOTS = (
    ("loss.png", "loss", "loss"),
    ("throughput.png", "samples_per_s", "samples/s"),
    ("rank_speed.png", "rank_step_s", "seconds per step"),
)


class ActionModule(ActionBase):
    """Runs on the controller only: writes files there, each only when its bytes differ, so a
    re-run with nothing new reports no change. Check mode writes nothing."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        info = args["info"]
        # This run's lines only: a service's log also holds its earlier deployments' tasks, until
        # the swarm reaps them (at a time of its choosing, which would change a re-run's files).
        tasks = set(info["task_ids"]) if "task_ids" in info else None
        path = os.path.join(args["dest"], run_dir_name(args["name"], info.get("stack_hash", "")))
        if args["kept_only"]:
            return {**result, "changed": False, "path": path, **self._kept(path)}
        # What an earlier read of this run saved stays: a read can miss a remote node's lines.
        logs = {
            name: of_tasks(in_time_order(self._saved(path, f"logs/{name}.log") + text.splitlines()), tasks)
            for name, text in (args["logs"] or info.get("logs", {})).items()
        }
        logged = log_records(line for lines in logs.values() for line in lines)
        # The trainer's own file holds each epoch once; a script's records come from rank 0's log.
        records = metrics_records(args["metrics"]) or as_printed(logged)
        rank0 = next((r["service"] for r in info.get("services", []) if r["rank"] == 0), "")
        script = args["script"] or script_of(info.get("stack", {}))
        # What came back of the output directory stays listed when this read brings none (the
        # results playbook does not fetch it again).
        output = args["output"] or self._kept(path)["summary"].get("output")
        summary = run_summary(
            args["name"],
            script,
            info,
            records,
            args["completion"],
            log_text(logs.get(rank0, [])),
            output,
            refusals(logs),
            speeds=[r for r in logged if rank_speed.usable(r)],
            stragglers=rank_speed.Stragglers(ratio=args["straggler_ratio"], epochs=args["straggler_epochs"]),
        )
        files = {
            "summary.json": json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            "metrics.jsonl": records_text(records),
            "stack.json": json.dumps(info.get("stack", {}), indent=2, sort_keys=True, ensure_ascii=False)
            + "\n",
            **{f"logs/{name}.log": "\n".join(lines) + "\n" for name, lines in sorted(logs.items())},
        }
        if args["plots"] and plots.available():
            for filename, key, label in PLOTS:
                png = plots.draw(
                    summary["series"],
                    key,
                    label,
                    f"job {args['name']}, run {summary['run']}: {label} by epoch",
                )
                if png is not None:
                    files[filename] = png
        elif args["plots"]:
            result["warnings"] = [plots.MISSING]
        written = [name for name, content in files.items() if self._write(path, name, content)]
        return {
            **result,
            "changed": bool(written),
            "path": path,
            "files": sorted(files),
            "written": written,
            "summary": summary,
            "lines": summary_lines(summary),
        }

    @staticmethod
    def _kept(path: str) -> dict:
        """The results kept in ``path``, if they are of a complete run (a finished run's results
        do not change); files named from the directory as it is."""
        try:
            with open(os.path.join(path, "summary.json"), encoding="utf-8") as handle:
                summary = json.load(handle)
        except (FileNotFoundError, ValueError):
            return {"kept": False, "files": [], "written": [], "summary": {}, "lines": []}
        files = sorted(
            os.path.relpath(os.path.join(d, f), path) for d, _unused, names in os.walk(path) for f in names
        )
        kept = summary.get("state") == "complete"
        lines = summary_lines(summary) if kept else []
        return {"kept": kept, "files": files, "written": [], "summary": summary, "lines": lines}

    @staticmethod
    def _saved(directory: str, name: str) -> list[str]:
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []

    def _write(self, directory: str, name: str, content: str | bytes) -> bool:
        """Whether the file is (or, in check mode, would be) new or different."""
        data = content.encode() if isinstance(content, str) else content
        target = os.path.join(directory, name)
        try:
            with open(target, "rb") as handle:
                if handle.read() == data:
                    return False
        except FileNotFoundError:
            pass
        if not self._task.check_mode:
            write_atomically(target, data, sync=False)
        return True
