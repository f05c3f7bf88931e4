"""The job's state from swarm tasks, and the summary from the trainer's metrics."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._job import (
    job_tasks,
    metrics_records,
    run_files,
    status_table,
    summarize_metrics,
)


def service(sid: str, name: str, rank: int) -> dict:
    return {"ID": sid, "Spec": {"Name": name, "Labels": {"io.torchswarm.node-rank": str(rank)}}}


def task(tid, sid, state, desired="shutdown", created="2026-11-24T10:00:00.5Z", exit_code=0, err=""):
    return {
        "ID": tid,
        "ServiceID": sid,
        "NodeID": f"id-{sid}",
        "DesiredState": desired,
        "CreatedAt": created,
        "Status": {"State": state, "Err": err, "ContainerStatus": {"ExitCode": exit_code}},
    }


SERVICES = [service("s1", "ddp_node1", 1), service("s0", "ddp_node0", 0)]
NODES = {"id-s0": "node0", "id-s1": "node1"}


@pytest.mark.parametrize(
    ("tasks", "state"),
    [
        ([task("a", "s0", "complete"), task("b", "s1", "complete")], "complete"),
        ([task("a", "s0", "complete"), task("b", "s1", "running", "running")], "running"),
        ([task("a", "s0", "complete")], "running"),  # node1's task not created yet
        # A failed task the swarm has not replaced yet (it may not be listed): not given up on.
        ([task("a", "s0", "complete"), task("b", "s1", "failed", exit_code=1)], "recovering"),
        # The swarm is restarting node1: the failed task is history, the newer one is current.
        (
            [
                task("a", "s0", "running", "running"),
                task("b", "s1", "failed", created="2026-11-24T10:00:00.5Z", exit_code=1),
                task("c", "s1", "ready", "running", created="2026-11-24T10:00:00.25Z"),
            ],
            "recovering",  # .25 is earlier than .5: the failed task is the newest, not yet given up on
        ),
        (
            [
                task("a", "s0", "running", "running"),
                task("b", "s1", "failed", created="2026-11-24T10:00:00.5Z", exit_code=1),
                task("c", "s1", "ready", "running", created="2026-11-24T10:00:01Z"),
            ],
            "recovering",
        ),
        # Restarted and up again: running.
        (
            [
                task("a", "s0", "running", "running"),
                task("b", "s1", "failed", created="2026-11-24T10:00:00.5Z", exit_code=1),
                task("c", "s1", "running", "running", created="2026-11-24T10:00:01Z"),
            ],
            "running",
        ),
        # A rank stopped by SIGTERM (exit 143): not complete, the swarm restarts it.
        ([task("a", "s0", "complete"), task("b", "s1", "failed", "running", exit_code=143)], "recovering"),
    ],
)
def test_job_state(tasks, state):
    assert job_tasks("ddp", SERVICES, tasks, NODES)["state"] == state


def test_the_swarm_gave_up_once_its_restart_policys_attempts_failed():
    """Before, a failed task listed before its replacement read as given up: a job whose script
    failed at its start was reported failed after its first try (a CI run of the check of it)."""
    limited = [
        {**s, "Spec": {**s["Spec"], "TaskTemplate": {"RestartPolicy": {"MaxAttempts": 2}}}} for s in SERVICES
    ]
    once = [task("a", "s0", "running", "running"), task("b", "s1", "failed", exit_code=1)]
    assert job_tasks("ddp", limited, once, NODES)["state"] == "recovering"
    twice = [*once, task("c", "s1", "failed", created="2026-11-24T10:00:01Z", exit_code=1)]
    assert job_tasks("ddp", limited, twice, NODES)["state"] == "failed"
    # Not while a newer task of the service is starting.
    starting = [*twice, task("d", "s1", "ready", "running", created="2026-11-24T10:00:02Z")]
    assert job_tasks("ddp", limited, starting, NODES)["state"] == "recovering"


def test_a_task_that_exited_do_not_retry_fails_the_job_while_the_swarm_restarts_it():
    tasks = [
        task("a", "s0", "running", "running"),
        task("b", "s1", "failed", exit_code=3, created="2026-11-24T10:00:00Z"),
        task("c", "s1", "starting", "running", created="2026-11-24T10:00:05Z"),
    ]
    assert job_tasks("ddp", SERVICES, tasks, NODES)["state"] == "failed"
    tasks[1]["Status"]["ContainerStatus"]["ExitCode"] = 1  # an ordinary failure: the restart may help
    assert job_tasks("ddp", SERVICES, tasks, NODES)["state"] == "recovering"


def test_only_tasks_of_the_current_deployment_count():
    """Right after a redeploy the previous deployment's completed tasks are still listed."""
    services = [
        {
            "ID": sid,
            "Spec": {
                "Name": name,
                "Labels": {"io.torchswarm.node-rank": r, "io.torchswarm.stack-hash": "new"},
            },
        }
        for sid, name, r in (("s0", "ddp_node0", "0"), ("s1", "ddp_node1", "1"))
    ]

    def of(deployment, *args, **kwargs):
        t = task(*args, **kwargs)
        t["Spec"] = {"ContainerSpec": {"Labels": {"io.torchswarm.stack-hash": deployment}}}
        return t

    old = [of("old", "a", "s0", "complete"), of("old", "b", "s1", "failed", exit_code=3)]
    assert job_tasks("ddp", services, old, NODES)["state"] == "running"  # nothing of the new one yet
    new = [of("new", "c", "s0", "complete", created="2026-11-24T10:01:00Z")]
    result = job_tasks("ddp", services, old + new, NODES)
    assert result["state"] == "running"
    assert [r["tasks"] for r in result["services"]] == [1, 0]


def test_rows_are_in_rank_order_with_the_newest_task():
    tasks = [
        task("old", "s0", "failed", created="2026-11-24T10:00:00.9Z", exit_code=137),
        task("new", "s0", "complete", created="2026-11-24T10:00:10Z"),
        task("b", "s1", "complete"),
    ]
    rows = job_tasks("ddp", SERVICES, tasks, NODES)["services"]
    assert [r["service"] for r in rows] == ["ddp_node0", "ddp_node1"]
    assert rows[0] | {} == {
        "service": "ddp_node0",
        "rank": 0,
        "node": "node0",
        "state": "complete",
        "desired_state": "shutdown",
        "exit_code": 0,
        "error": "",
        "tasks": 2,
        "task_id": "new",
        "host": "",  # no pinned hostname label on these services
        "lost": False,
    }
    assert job_tasks("ddp", SERVICES, tasks, NODES)["task_ids"] == ["b", "new", "old"]


def pinned(sid: str, name: str, rank: int, hostname: str) -> dict:
    made = service(sid, name, rank)
    made["Spec"]["Labels"]["io.torchswarm.hostname"] = hostname
    return made


ELASTIC = [
    pinned("s0", "ddp_node0", 0, "node0"),
    pinned("s1", "ddp_node1", 1, "node1"),
    pinned("s2", "ddp_node2", 2, "node2"),
    {"ID": "sr", "Spec": {"Name": "ddp_rendezvous", "Labels": {"io.torchswarm.role": "rendezvous"}}},
]


def test_a_rank_on_a_node_that_is_down_is_lost_and_the_rest_can_complete():
    """node2's host died: its service's new task is pending forever. The others finished."""
    tasks = [task("a", "s0", "complete"), task("b", "s1", "complete"), task("c", "s2", "pending", "running")]
    tasks.append(task("r", "sr", "running", "running"))
    info = job_tasks("ddp", ELASTIC, tasks, NODES, ready=["node0", "node1"])
    assert info["state"] == "complete" and info["lost"] == ["ddp_node2"]
    assert [r["service"] for r in info["services"]] == ["ddp_node0", "ddp_node1", "ddp_node2"]
    assert "node down: rank lost" in status_table(info["services"])[-1]


def test_while_a_rank_is_lost_the_job_is_recovering_not_running():
    tasks = [task(t, s, "running", "running") for t, s in (("a", "s0"), ("b", "s1"), ("c", "s2"))]
    assert job_tasks("ddp", ELASTIC, tasks, NODES, ready=["node0", "node1", "node2"])["state"] == "running"
    lost_one = job_tasks("ddp", ELASTIC, tasks, NODES, ready=["node0", "node1"])
    assert lost_one["state"] == "recovering" and lost_one["training_hosts"] == 2
    # Every rank lost is nothing complete.
    assert job_tasks("ddp", ELASTIC, tasks, NODES, ready=[])["state"] == "recovering"


def test_no_services_is_absent():
    assert job_tasks("ddp", [], [], {})["state"] == "absent"


def test_status_table_aligns_columns():
    rows = job_tasks(
        "ddp", SERVICES, [task("a", "s0", "complete"), task("b", "s1", "failed", err="boom")], NODES
    )
    lines = status_table(rows["services"])
    assert lines[0].split() == ["RANK", "SERVICE", "NODE", "STATE", "DESIRED", "EXIT", "TASKS", "ERROR"]
    assert lines[2].split() == ["1", "ddp_node1", "node1", "failed", "shutdown", "0", "1", "boom"]
    assert lines[1].index(" node0") + 1 == lines[0].index("NODE")


def summarize_metrics_of(text: str) -> dict:
    return summarize_metrics(metrics_records(text))


def test_metrics_summary_of_a_resumed_run():
    records = [
        {"event": "epoch", "epoch": 0, "loss": 1.0, "world_size": 3},
        {"event": "epoch", "epoch": 1, "loss": 0.5, "world_size": 3},
        {
            "event": "summary",
            "epochs": 2,
            "final_loss": 0.5,
            "world_size": 3,
            "wall_s": 4.0,
            "resumed_from": None,
        },
        {"event": "epoch", "epoch": 2, "loss": 0.25, "world_size": 4},
        {
            "event": "summary",
            "epochs": 3,
            "final_loss": 0.25,
            "world_size": 4,
            "wall_s": 2.0,
            "resumed_from": {"epoch": 2, "step": 0},
            "device": "cpu",
        },
    ]
    text = "\n".join(json.dumps(r) for r in records) + '\n{"event": "epo'
    summary = summarize_metrics_of(text)
    assert summary == {
        "finished": True,
        "epochs": 3,
        "final_loss": 0.25,
        "world_size": 4,
        "wall_s": 2.0,
        "resumed_from": {"epoch": 2, "step": 0},
        "device": "cpu",
        "epochs_trained": [0, 1, 2],
        "world_sizes": [3, 4],
        "runs": 2,
    }


def test_metrics_summary_while_running():
    summary = summarize_metrics_of(json.dumps({"event": "epoch", "epoch": 0, "loss": 2.0, "world_size": 2}))
    assert summary["finished"] is False
    assert summary["final_loss"] == 2.0
    assert summary["epochs_trained"] == [0]


def image_record_module():
    """The image's torchswarm/record.py, which writes the completion record (no torch needed)."""
    training = Path(__file__).resolve().parents[4] / "training"
    sys.path.insert(0, str(training))
    try:
        return importlib.import_module("torchswarm.record")
    finally:
        sys.path.remove(str(training))


def test_run_files_reads_the_record_the_image_writes_and_the_metrics(tmp_path):
    record = image_record_module()
    record.write_complete(str(tmp_path), "abc123", {"host": "node1", "world_size": 3})
    (tmp_path / "metrics.jsonl").write_text('{"event": "epoch", "epoch": 0}\n')
    found = run_files(str(tmp_path), "abc123")
    assert found == {
        "completion": {"generation": "abc123", "host": "node1", "world_size": 3},
        "metrics": '{"event": "epoch", "epoch": 0}\n',
    }
    # Another run's record is not this run's completion.
    assert run_files(str(tmp_path), "def456")["completion"] == {}


def test_run_files_of_a_node_where_the_run_did_not_complete_or_the_record_is_cut(tmp_path):
    assert run_files(str(tmp_path / "none"), "abc123") == {"completion": {}, "metrics": ""}
    (tmp_path / ".torchswarm").mkdir()
    (tmp_path / ".torchswarm" / "complete-abc123.json").write_text('{"generation": "abc1')
    assert run_files(str(tmp_path), "abc123") == {"completion": {}, "metrics": ""}
