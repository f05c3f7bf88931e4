"""A finished run's results as the controller keeps them: its summary, its lines, its plot series.

Pure: the job's state (``training_job_info``), the completion record, the metrics records and
the ranks' logs in; dicts and text out. The files are written by the training_results action.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._job import summarize_metrics, time_key
from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import LOG_KEYS, parse_log_line
from ansible_collections.torchswarm.ddp.plugins.plugin_utils import _rank_speed as rank_speed

LAST_LINES = 20  # of rank 0's log, in summary.json
PRINTED_LINES = 5  # of those, printed at the end of a run whose script reports no metrics
# The image's launcher, when a rank gives up (training/torchswarm/launcher.py).
GAVE_UP = re.compile(r"^torchswarm: not retrying \(exit \d+\): (?P<why>.+)$")


# What the image's launcher and torchswarm.step print for the wait to show: not the script's
# metrics, and never in the trainer's own metrics file.
NOT_METRICS = {"host_check", "nccl", "first_step", "stalled", rank_speed.EVENT}


def as_printed(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The metrics records read from a log, without where and when the log had them: as the
    script printed them, so rank 0's log and the trainer's own file give the same results (a
    re-run rewrites nothing)."""
    return [
        {k: v for k, v in r.items() if k not in LOG_KEYS}
        for r in records
        if r.get("event") not in NOT_METRICS
    ]


def records_text(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in records)


def in_time_order(lines: Iterable[str]) -> list[str]:
    """Service log lines from several reads (stdout and stderr apart, an earlier read) as one
    list, each line once, in time order (lines without docker's time stamp last, as they came)."""

    def key(line: str) -> tuple[str, str]:
        part = parse_log_line(line)
        return time_key(part["time"]) if part else ("~", "")

    return sorted(dict.fromkeys(line for line in lines if line.strip()), key=key)


def of_tasks(lines: list[str], tasks: set[str] | None) -> list[str]:
    """The lines of these tasks (None: every line)."""
    if tasks is None:
        return lines
    return [line for line in lines if (part := parse_log_line(line)) is not None and part["task"] in tasks]


def log_text(lines: Iterable[str]) -> list[str]:
    """What the script printed: service log lines without docker's time and task prefix."""
    out = []
    for line in lines:
        part = parse_log_line(line)
        out.append(part["text"] if part else line)
    return out


def refusals(logs: Mapping[str, Iterable[str]]) -> list[str]:
    """Why ranks gave up (the launcher's "not retrying" lines in each service's log, without
    docker's prefix): each reason once, with the services that gave it."""
    services: dict[str, list[str]] = {}
    for service, lines in sorted(logs.items()):
        for line in log_text(lines):
            found = GAVE_UP.match(line.strip())
            if found and service not in services.setdefault(found["why"], []):
                services[found["why"]].append(service)
    return [f"{why} ({', '.join(names)})" for why, names in services.items()]


def plot_series(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Loss and throughput by epoch (1-based, as the progress lines count), the epochs at which
    a run started again (a rank stopped, or the time in went back: a restart) and the epochs at
    which the world size changed. An epoch trained twice keeps its last value."""
    loss: dict[int, float] = {}
    throughput: dict[int, float] = {}
    restarts: list[int] = []
    sizes: list[tuple[int, int]] = []
    last_elapsed, stopped = None, False
    for record in records:
        if record.get("event") == "stopped":
            stopped = True
            continue
        if record.get("event") != "epoch" or "epoch" not in record:
            continue
        epoch = int(record["epoch"]) + 1
        elapsed = record.get("elapsed_s")
        if last_elapsed is not None and (stopped or (elapsed is not None and elapsed < last_elapsed)):
            restarts.append(epoch)
        last_elapsed, stopped = elapsed if elapsed is not None else last_elapsed, False
        size = record.get("world_size")
        if size is not None and (not sizes or sizes[-1][1] != size):
            sizes.append((epoch, int(size)))
        if isinstance(record.get("loss"), int | float):
            loss[epoch] = float(record["loss"])
        if isinstance(record.get("samples_per_s"), int | float):
            throughput[epoch] = float(record["samples_per_s"])
    return {
        "loss": sorted(loss.items()),
        "samples_per_s": sorted(throughput.items()),
        "restarts": sorted(set(restarts)),
        "world_sizes": sizes,
    }


def run_summary(
    job: str,
    script: str,
    info: Mapping[str, Any],
    records: list[Mapping[str, Any]],
    completion: Mapping[str, Any],
    rank0_log: list[str],
    output: Mapping[str, Any] | None = None,
    refused: list[str] | None = None,
    speeds: Iterable[Mapping[str, Any]] = (),
    stragglers: rank_speed.Stragglers | None = None,
) -> dict[str, Any]:
    """summary.json: what ran, how it ended (``refused``: why ranks gave up, from refusals()),
    per rank, the metrics when the script reports them, what of rank 0's output directory came
    back (``output``, training_output's result with the ``node`` and ``source`` directory it came
    from), and the ranks' speed (``speeds``, every rank's rank_speed records): the stragglers, as
    ``stragglers`` (its ratio and epochs) names them, and each rank's time per step by epoch."""
    speeds = list(speeds)
    rows = info.get("services", [])
    metrics = summarize_metrics(records)
    epochs = [r for r in records if r.get("event") == "epoch"]
    return {
        "job": job,
        "run": info.get("stack_hash", ""),
        "state": info.get("state", ""),
        "refused": list(refused or []),
        "script": script,
        "world_size": metrics["world_size"] or completion.get("world_size"),
        "wall_s": metrics["wall_s"] if metrics["wall_s"] is not None else completion.get("wall_s"),
        # The node of rank 0's service (the record's host is the container's name).
        "rank0_host": next((r["node"] for r in rows if r.get("rank") == 0 and r.get("node")), "")
        or completion.get("host", ""),
        "finished_nodes": sorted({r["node"] for r in rows if r.get("state") == "complete" and r.get("node")}),
        "lost": list(info.get("lost", [])),
        "ranks": [
            {
                "rank": r["rank"],
                "service": r["service"],
                "node": r["node"],
                "state": r["state"],
                "exit_code": r["exit_code"],
                "restarts": max(r.get("tasks", 0) - 1, 0),
            }
            for r in rows
        ],
        "metrics": metrics if epochs else None,
        "stragglers": (stragglers or rank_speed.Stragglers()).run(speeds),
        # What loss.png, throughput.png and rank_speed.png show, as numbers.
        "series": {**plot_series(records), "rank_step_s": rank_speed.series(speeds)},
        "last_epoch": dict(epochs[-1]) if epochs else None,
        "rank0_last_lines": rank0_log[-LAST_LINES:],
        "output": _output(output) if output else None,
    }


def _output(output: Mapping[str, Any]) -> dict[str, Any]:
    """What came back of the output directory: each file's path (below output/), size and sha256;
    or, when it was more than the limit, why it stayed on the node and where."""
    return {
        "files": [{k: f[k] for k in ("path", "size", "sha256") if k in f} for f in output.get("files", [])],
        "bytes": output.get("bytes", 0),
        "node": output.get("node", ""),
        "source": output.get("source", ""),
        "skipped": output.get("skipped"),
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The few lines the playbook prints at the end of a waited run."""
    job, nodes, metrics = summary["job"], len(summary["finished_nodes"]), summary["metrics"]
    lost = f", lost: {', '.join(summary['lost'])}" if summary["lost"] else ""
    wall = f"{float(summary['wall_s'] or 0):.1f}"
    restarts = sum(r["restarts"] for r in summary["ranks"])
    if summary["state"] != "complete":
        done = sum(1 for r in summary["ranks"] if r["state"] == "complete")
        lines = [f"job {job}: {summary['state']}, {done} of {len(summary['ranks'])} ranks completed{lost}"]
        lines += [f"gave up: {why}" for why in summary.get("refused", [])]
        if summary["last_epoch"]:
            lines.append(f"last epoch reported: {int(summary['last_epoch']['epoch']) + 1}")
        if summary["state"] == "failed":
            lines += [f"rank 0 | {line}" for line in summary["rank0_last_lines"][-PRINTED_LINES:]]
    elif metrics and metrics["epochs_trained"]:
        resumed = metrics["resumed_from"]
        lines = [
            f"job {job}: {metrics['epochs'] or len(set(metrics['epochs_trained']))} epochs"
            + (f", final loss {metrics['final_loss']:.4f}" if metrics["final_loss"] is not None else ""),
            f"world size {summary['world_size']} on {nodes} nodes"
            + (f" ({metrics['device']})" if metrics["device"] else "")
            + lost,
            f"wall time {wall} s (the last run"
            + (f", resumed at epoch {resumed['epoch']}" if resumed else "")
            + ")",
            f"epochs trained: {' '.join(str(e) for e in metrics['epochs_trained'])}",
        ]
    else:
        codes = " ".join("-" if r["exit_code"] is None else str(r["exit_code"]) for r in summary["ranks"])
        lines = [
            f"job {job}: {summary['script'] or 'the script'} finished on {nodes} nodes, "
            f"world size {summary['world_size'] or 'unknown'}{lost}",
            f"wall time {wall} s (the last run, rank 0 on {summary['rank0_host'] or '?'}), "
            f"exit codes by rank: {codes}",
            "no epoch records: the script does not call torchswarm.report"
            " (docs/scripts-and-data.md: Report your own metrics)",
            *(f"rank 0 | {line}" for line in summary["rank0_last_lines"][-PRINTED_LINES:]),
        ]
    if restarts:
        lines.append(f"restarts: {restarts} task(s) started again by the swarm")
    lines += [
        f"straggler: rank {s['rank']} on {s['host'] or '?'}, up to {s['times_median']}x the median rank's "
        f"time per step, {s['epochs']} epochs in a row" + (" (to the end)" if s["slow_at_end"] else "")
        for s in summary.get("stragglers", [])
    ]
    output = summary.get("output")
    if output and output["skipped"]:
        lines.append(f"output: left on {output['node']} at {output['source']}: {output['skipped']}")
    elif output and output["files"]:
        lines.append(
            f"output: {len(output['files'])} file(s), {output['bytes']} bytes, from {output['node']} "
            "in output/ (sha256 in summary.json)"
        )
    return lines
