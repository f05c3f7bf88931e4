"""A run's summary, its printed lines and its plot series."""

from __future__ import annotations

import json

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._job import metrics_records, run_dir_name
from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import log_records
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._rank_speed import Stragglers
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._results import (
    as_printed,
    in_time_order,
    plot_series,
    records_text,
    refusals,
    run_summary,
    summary_lines,
)


def rows(states=("complete", "complete", "complete"), tasks=(1, 1, 1), exit_codes=(0, 0, 0)):
    return [
        {"service": f"ddp_node{i}", "rank": i, "node": f"node{i}", "state": s, "tasks": t, "exit_code": e}
        for i, (s, t, e) in enumerate(zip(states, tasks, exit_codes, strict=True))
    ]


def epoch(n, loss, elapsed, world=3, rate=100.0):
    return {
        "event": "epoch",
        "epoch": n,
        "loss": loss,
        "samples_per_s": rate,
        "world_size": world,
        "elapsed_s": elapsed,
    }


def test_restarts_and_world_size_changes_are_marked_and_a_retrained_epoch_keeps_its_last_value():
    records = [
        epoch(0, 1.0, 10),
        epoch(1, 0.8, 20),
        epoch(2, 0.7, 30),  # lost: the run died before the snapshot at epoch 2 ...
        epoch(2, 0.65, 12, world=2, rate=70.0),  # ... and epoch 2 ran again on two hosts
        {"event": "stopped", "epoch": 3, "step": 4},
        epoch(3, 0.6, 9, world=3),
        {"event": "summary", "epochs": 4, "final_loss": 0.6, "wall_s": 9},
    ]
    series = plot_series(records)
    assert series["loss"] == [(1, 1.0), (2, 0.8), (3, 0.65), (4, 0.6)]
    assert series["samples_per_s"] == [(1, 100.0), (2, 100.0), (3, 70.0), (4, 100.0)]
    assert series["restarts"] == [3, 4]
    assert series["world_sizes"] == [(1, 3), (3, 2), (4, 3)]


def test_metrics_text_skips_lines_cut_short():
    text = (
        json.dumps(epoch(0, 1.0, 1)) + "\n" + '{"event": "epo' + "\n\n" + json.dumps({"no": "event"}) + "\n"
    )
    assert metrics_records(text) == [epoch(0, 1.0, 1)]


def test_trainer_summary_and_lines():
    info = {
        "state": "complete",
        "stack_hash": "3f2a9c0d1e4b5a67",
        "services": rows(tasks=(1, 2, 1)),
        "lost": [],
    }
    records = [
        epoch(0, 1.0, 10),
        epoch(1, 0.5, 20),
        {
            "event": "summary",
            "epochs": 2,
            "final_loss": 0.5,
            "world_size": 3,
            "wall_s": 20.5,
            "device": "cpu",
            "resumed_from": None,
        },
    ]
    summary = run_summary("ddp", "training_code.py", info, records, {"host": "node0"}, ["a", "b"])
    assert summary["run"] == "3f2a9c0d1e4b5a67" and summary["world_size"] == 3
    assert [r["restarts"] for r in summary["ranks"]] == [0, 1, 0]
    assert summary_lines(summary) == [
        "job ddp: 2 epochs, final loss 0.5000",
        "world size 3 on 3 nodes (cpu)",
        "wall time 20.5 s (the last run)",
        "epochs trained: 0 1",
        "restarts: 1 task(s) started again by the swarm",
    ]


def test_a_script_without_records_still_gets_world_size_wall_time_exit_codes_and_rank0s_last_lines():
    info = {"state": "complete", "stack_hash": "abc", "services": rows(), "lost": []}
    log = [f"line {i}" for i in range(30)]
    completion = {"host": "node0", "world_size": 3, "wall_s": 41.25}
    summary = run_summary("user-ddp", "my_ddp.py", info, [], completion, log)
    assert summary["metrics"] is None and summary["rank0_last_lines"] == log[-20:]
    assert [r["exit_code"] for r in summary["ranks"]] == [0, 0, 0]
    assert summary_lines(summary) == [
        "job user-ddp: my_ddp.py finished on 3 nodes, world size 3",
        "wall time 41.2 s (the last run, rank 0 on node0), exit codes by rank: 0 0 0",
        "no epoch records: the script does not call torchswarm.report"
        " (docs/scripts-and-data.md: Report your own metrics)",
        *(f"rank 0 | line {i}" for i in range(25, 30)),
    ]


def test_a_failed_run_says_so_and_how_far_it_got():
    info = {
        "state": "failed",
        "stack_hash": "abc",
        "services": rows(("complete", "failed", "running")),
        "lost": [],
    }
    summary = run_summary("ddp", "training_code.py", info, [epoch(0, 1.0, 1)], {}, [])
    assert summary_lines(summary) == ["job ddp: failed, 1 of 3 ranks completed", "last epoch reported: 1"]


def test_a_job_that_could_not_start_says_why_each_rank_gave_up_and_what_rank0_said_last():
    def logged(service, *texts):
        return [
            f"2026-12-06T22:00:0{i}.5Z {service}.1.task{i}@node{service[-1]}    | {t}"
            for i, t in enumerate(texts)
        ]

    missing = "the script trian.py is not in the image (no such file in /workspace)"
    early = "the script failed 3 times in a row before its first step: rank 0: ModuleNotFoundError: x"
    logs = {
        "ddp_node0": logged(
            "ddp_node0", "Traceback (most recent call last):", f"torchswarm: not retrying (exit 3): {early}"
        ),
        "ddp_node1": logged("ddp_node1", f"torchswarm: not retrying (exit 3): {missing}"),
        "ddp_node2": logged(
            "ddp_node2", f"torchswarm: not retrying (exit 3): {missing}", "torchswarm: other"
        ),
    }
    assert refusals(logs) == [f"{early} (ddp_node0)", f"{missing} (ddp_node1, ddp_node2)"]
    info = {"state": "failed", "stack_hash": "abc", "services": rows(("failed",) * 3), "lost": []}
    rank0 = [f"line {i}" for i in range(8)]
    summary = run_summary("ddp", "trian.py", info, [], {}, rank0, refused=refusals(logs))
    assert summary["refused"] == refusals(logs)
    assert summary_lines(summary) == [
        "job ddp: failed, 0 of 3 ranks completed",
        f"gave up: {early} (ddp_node0)",
        f"gave up: {missing} (ddp_node1, ddp_node2)",
        *(f"rank 0 | line {i}" for i in range(3, 8)),
    ]
    assert refusals({"ddp_node0": logged("ddp_node0", "torchswarm: not retrying, says the script")}) == []


@pytest.mark.parametrize(("job", "run", "path"), [("ddp", "3f2a", "ddp/3f2a"), ("a/b", "", "a_b/unknown")])
def test_run_dir_names_stay_below_the_results_directory(job, run, path):
    assert run_dir_name(job, run) == path


def test_stdout_and_stderr_of_a_service_log_merge_in_time_order():
    prefix = "ddp_node0.1.abc@node0    |"
    out = f"2026-11-26T22:00:02Z {prefix} {{}}\n2026-11-26T22:00:04.5Z {prefix} b"
    err = "2026-11-26T22:00:01.75Z ddp_node0.1.abc@node0    | torchswarm: a\nno stamp\n"
    merged = in_time_order((out + "\n" + err).splitlines())
    assert [line.rsplit("| ", 1)[-1] for line in merged] == ["torchswarm: a", "{}", "b", "no stamp"]


def test_the_trainers_file_and_rank0s_log_give_the_same_results():
    """A waited run reads the trainer's metrics.jsonl, results.yml rank 0's log: the same files either way."""
    printed = [epoch(0, 1.0, 10), {"event": "summary", "epochs": 1, "final_loss": 1.0, "world_size": 3}]
    trainer_file = "".join(json.dumps(r) + "\n" for r in printed)
    # The log also holds what the launcher and torchswarm.step print for the wait (a CI run's
    # results re-read from the logs rewrote metrics.jsonl with them).
    launcher = [
        {"event": "host_check", "line": "/dev/shm 1.0 GiB"},
        {"event": "first_step", "world_size": 3},
        {"event": "rank_speed", "rank": 0, "epoch": 0, "world_size": 3, "steps": 9, "step_s": 0.2},
    ]
    log = [
        f"2026-12-01T13:03:5{i}.49056Z ddp_node0.1.abc123@node0    | {json.dumps(r)}"
        for i, r in enumerate(launcher + printed)
    ]
    from_log = log_records(log)
    assert [r["service"] for r in from_log] == ["ddp_node0"] * 5
    from_file = metrics_records(trainer_file)
    assert as_printed(from_log) == from_file == printed
    assert records_text(as_printed(from_log)) == records_text(from_file)
    summary = run_summary("ddp", "training_code.py", {}, as_printed(from_log), {}, [])
    assert summary == run_summary("ddp", "training_code.py", {}, from_file, {}, [])
    assert summary["last_epoch"] == printed[0]


def test_the_output_that_came_back_is_listed_with_its_digests_and_output_left_behind_says_where():
    info = {"state": "complete", "stack_hash": "abc", "services": rows(), "lost": []}
    records = [epoch(0, 1.0, 10)]
    fetched = {
        "files": [{"path": "model.pt", "size": 1431, "sha256": "9f86d0"}],
        "bytes": 1431,
        "path": "/home/ops/torchswarm-results/ddp/abc/output",
        "skipped": None,
        "changed": True,
        "node": "node0",
        "source": "/var/lib/docker/volumes/ddp-snapshots/_data/output/abc",
    }
    summary = run_summary("ddp", "training_code.py", info, records, {}, [], fetched)
    assert summary["output"] == {
        "files": [{"path": "model.pt", "size": 1431, "sha256": "9f86d0"}],
        "bytes": 1431,
        "node": "node0",
        "source": "/var/lib/docker/volumes/ddp-snapshots/_data/output/abc",
        "skipped": None,
    }
    assert (
        summary_lines(summary)[-1]
        == "output: 1 file(s), 1431 bytes, from node0 in output/ (sha256 in summary.json)"
    )

    too_big = {
        **fetched,
        "bytes": 0,
        "skipped": "1 files of 20000000000 bytes, more than the 10737418240 it may take",
    }
    assert summary_lines(run_summary("ddp", "training_code.py", info, records, {}, [], too_big))[-1] == (
        "output: left on node0 at /var/lib/docker/volumes/ddp-snapshots/_data/output/abc: "
        "1 files of 20000000000 bytes, more than the 10737418240 it may take"
    )
    nothing = run_summary("ddp", "training_code.py", info, records, {}, [])
    assert nothing["output"] is None and not any(line.startswith("output") for line in summary_lines(nothing))


def test_the_summary_names_the_stragglers_with_their_hosts_and_keeps_each_ranks_time_per_step():
    speeds = [
        {"event": "rank_speed", "rank": r, "host": f"node{r}", "epoch": e, "world_size": 3, "steps": 50}
        | {"step_s": 0.3, "own_s": 0.25 if r == 1 and e < 3 else 0.1}
        for e in range(4)
        for r in range(3)
    ]
    info = {"state": "complete", "stack_hash": "abc", "services": rows(), "lost": []}
    records = [epoch(e, 1.0 / (e + 1), 10.0 * (e + 1)) for e in range(4)]
    summary = run_summary("ddp", "training_code.py", info, records, {}, [], speeds=speeds)
    assert summary["stragglers"] == [
        {"rank": 1, "host": "node1", "times_median": 2.5, "epochs": 3, "slow_at_end": False}
    ]
    assert summary_lines(summary)[-1] == (
        "straggler: rank 1 on node1, up to 2.5x the median rank's time per step, 3 epochs in a row"
    )
    assert summary["series"]["rank_step_s"]["rank 1 (node1)"] == [(1, 0.25), (2, 0.25), (3, 0.25), (4, 0.1)]
    # Named by the inventory's ratio and epochs.
    strict = run_summary("ddp", "x.py", info, records, {}, [], speeds=speeds, stragglers=Stragglers(epochs=4))
    assert strict["stragglers"] == [] and "straggler" not in " ".join(summary_lines(strict))
