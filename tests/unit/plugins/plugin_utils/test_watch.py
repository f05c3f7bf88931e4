"""The wait's progress lines (plugin_utils/_watch.py), from real `docker service logs --timestamps
--no-trunc` lines read as the manager reads them (module_utils/_progress.py)."""

from __future__ import annotations

import json

from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import (
    log_records,
    parse_log_line,
    since_with_margin,
)
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._rank_speed import Stragglers
from ansible_collections.torchswarm.ddp.plugins.plugin_utils._watch import Watch, duration

TASK0 = "x2b5kq0w3h2vd8s9g7u3n1f0c"
TASK1 = "k7l1m0n9b8v7c6x5z4a3s2d1f"


def line(stamp: str, task: str, text: str, service: str = "ddp_node0", node: str = "node0") -> str:
    return f"{stamp} {service}.1.{task}@{node}    | {text}"


def epoch(n: int, elapsed: float, world: int = 3, **more) -> str:
    record = {"event": "epoch", "epoch": n, "epochs": 10, "loss": 1.0 / (n + 1), "samples_per_s": 950.4}
    return json.dumps({**record, "world_size": world, "elapsed_s": elapsed, **more})


def info(state="running", lost=(), training=3):
    rows = [
        {
            "service": f"ddp_node{i}",
            "node": f"node{i}",
            "host": f"node{i}",
            "rank": i,
            "state": "running",
            "tasks": 1,
        }
        for i in range(3)
    ]
    for row in rows:
        if row["service"] in lost:
            row["node"] = ""  # the swarm's replacement task is placed nowhere while the node is down
    return {"state": state, "services": rows, "lost": list(lost), "training_hosts": training}


def test_parses_docker_service_log_lines():
    part = parse_log_line(line("2026-11-26T22:00:00.123456789Z", TASK0, "hello | world"))
    assert part == {
        "time": "2026-11-26T22:00:00.123456789Z",
        "service": "ddp_node0",
        "slot": "1",
        "task": TASK0,
        "node": "node0",
        "text": "hello | world",
    }
    assert parse_log_line("torchswarm: not a service log line") is None


def test_records_are_json_objects_with_an_event_from_this_deployment_in_time_order():
    lines = [
        line("2026-11-26T22:00:02.5Z", TASK0, epoch(1, 20.0)),
        line("2026-11-26T22:00:01.25Z", TASK0, epoch(0, 10.0)),
        line("2026-11-26T22:00:03Z", TASK0, "torchswarm: first step trained"),
        line("2026-11-26T22:00:04Z", TASK0, '{"no": "event"}'),
        line("2026-11-26T22:00:05Z", TASK0, '{"event": "epoch", "epoch": 2, "loss": 0.'),  # cut short
        line("2026-11-26T22:00:06Z", "oldtask0000000000000000000", epoch(9, 90.0)),
    ]
    records = log_records(lines, [TASK0, TASK1])
    assert [r["epoch"] for r in records] == [0, 1]  # 01.25 sorts before 02.5 although text says otherwise
    assert records[0]["service"] == "ddp_node0" and records[0]["time"] == "2026-11-26T22:00:01.25Z"
    assert [r["epoch"] for r in log_records(lines)] == [0, 1, 9]


def test_epoch_lines_carry_loss_throughput_world_size_and_the_time_left():
    watch = Watch()
    lines = [
        line("2026-11-26T22:00:01Z", TASK0, epoch(0, 10.0)),
        line("2026-11-26T22:00:11Z", TASK0, epoch(1, 20.0)),
    ]
    said = watch.update(info(), log_records(lines), now=100.0)
    assert said == [
        "job running: 3 of 3 hosts up",
        "epoch 1/10, loss 1, 950 samples/s, world size 3, 10 s in, about 1 min 30 s left",
        "epoch 2/10, loss 0.5, 950 samples/s, world size 3, 20 s in, about 1 min 20 s left",
    ]


def test_extra_numbers_of_a_users_record_show_as_key_value():
    watch = Watch(epochs=4)
    record = {"event": "epoch", "epoch": 0, "loss": 0.25, "accuracy": 0.875, "note": "text", "flag": True}
    said = watch.update(info(), [record], now=1.0)
    assert said[-1] == "epoch 1/4, loss 0.25, accuracy 0.875"


def test_a_restart_restarts_the_estimate_and_a_record_seen_twice_prints_once():
    watch = Watch()
    first = log_records([line("2026-11-26T22:00:01Z", TASK0, epoch(3, 40.0))])
    watch.update(info(), first, now=1.0)
    assert watch.update(info(), first, now=2.0) == []  # the next read overlaps at its boundary
    # After a restart from a snapshot at epoch 4, the run's clock starts again.
    said = watch.update(info(), log_records([line("2026-11-26T22:01:00Z", TASK0, epoch(4, 5.0))]), now=3.0)
    assert said == ["epoch 5/10, loss 0.2, 950 samples/s, world size 3, 5 s in, about 25 s left"]


def test_lost_and_returning_hosts_and_state_changes():
    watch = Watch()
    watch.update(info(), [], now=0.0)
    said = watch.update(info("recovering", lost=["ddp_node2"], training=2), [], now=1.0)
    assert said == [
        "host node2 lost (ddp_node2: its node is down)",
        "job recovering: ranks restarting, 1 host(s) lost",
    ]
    said = watch.update(info("running", training=3), [], now=2.0)
    assert said == ["host of ddp_node2 is back", "job running: 3 of 3 hosts up"]
    assert watch.update(info("complete"), [], now=3.0) == []  # the role prints the end itself


def test_a_wait_that_starts_late_shows_only_the_newest_records():
    records = [json.loads(epoch(n, 10.0 * (n + 1))) for n in range(8)]
    said = Watch(backlog=3).update(info("complete"), records, now=0.0)
    assert said[0] == "(5 earlier records not shown; the results keep them)"
    assert [line.split(",")[0] for line in said[1:]] == ["epoch 6/10", "epoch 7/10", "epoch 8/10"]


def test_ranks_that_are_starting_are_not_called_training():
    assert Watch().update(info(training=0), [], now=0.0) == ["job running: 3 ranks starting"]


def test_hosts_are_up_until_rank0_says_it_trained_a_step_at_its_world_size_each_round():
    watch = Watch()
    assert watch.update(info(), [], now=0.0) == ["job running: 3 of 3 hosts up"]
    first = {"event": "first_step", "world_size": 3, "elapsed_s": 4.2}
    assert watch.update(
        info(), log_records([line("2026-11-26T22:00:01Z", TASK0, json.dumps(first))]), now=1.0
    ) == ["training at world size 3"]
    again = {"event": "first_step", "world_size": 2, "elapsed_s": 3.0}
    said = watch.update(
        info("recovering", lost=["ddp_node2"], training=2),
        log_records([line("2026-11-26T22:01:00Z", TASK0, json.dumps(again))]),
        now=2.0,
    )
    assert said[-1] == "training at world size 2"


def test_a_quiet_job_gets_a_status_line_after_the_heartbeat():
    watch = Watch(heartbeat=60)
    watch.update(info(), [], now=0.0)
    assert watch.update(info(), [], now=59.0) == []
    assert watch.update(info(), [], now=61.0) == ["still running: 3 of 3 hosts up, no epoch yet"]
    assert watch.update(info(), [], now=62.0) == []


def test_summary_and_stopped_records():
    watch = Watch()
    said = watch.update(
        info(),
        [
            {"event": "stopped", "epoch": 3, "step": 7},
            {"event": "summary", "epochs": 10, "final_loss": 0.0213, "wall_s": 95.2},
        ],
        now=0.0,
    )
    assert said[1:] == [
        "a rank stopped at epoch 3 step 7 after a snapshot",
        "training finished: 10 epochs, final loss 0.0213, 1 min 35 s",
    ]


def test_durations():
    assert [duration(s) for s in (0.4, 42, 185, 7620)] == ["0 s", "42 s", "3 min 05 s", "2 h 07 min"]


def test_the_next_read_starts_a_margin_before_the_newest_line_in_unix_seconds():
    assert since_with_margin("2026-11-26T22:52:50.411126783Z") == "1795733560.411126783"
    assert since_with_margin("2026-11-26T22:52:50Z", margin=0) == "1795733570.0"
    assert since_with_margin("") == ""


def test_each_hosts_check_is_one_line_with_its_warnings_said_again_only_when_it_changed():
    def check(service: str, stamp: str, line_text: str, warnings=()) -> str:
        record = {"event": "host_check", "line": line_text, "warnings": list(warnings)}
        return line(stamp, TASK0, json.dumps(record), service=service)

    small = "/dev/shm 64 MiB, memlock unlimited, open files 1048576, GPUs 0 visible"
    warning = "/dev/shm is 64 MiB: DataLoader workers fail with bus errors on large batches"
    watch = Watch()
    said = watch.update(
        info(), log_records([check("ddp_node1", "2026-11-26T22:00:01Z", small, [warning])]), 0.0
    )
    assert said[1:] == [f"ddp_node1: {small}", f"warning: ddp_node1: {warning}"]
    # The same check after a restart prints nothing; a changed one prints again.
    again = [check("ddp_node1", "2026-11-26T22:01:00Z", small, [warning])]
    assert watch.update(info(), log_records(again), 1.0) == []
    bigger = small.replace("64 MiB", "1.0 GiB")
    assert watch.update(info(), log_records([check("ddp_node1", "2026-11-26T22:02:00Z", bigger)]), 2.0) == [
        f"ddp_node1: {bigger}"
    ]


def test_a_stall_says_where_and_for_how_long_and_that_the_round_re_forms():
    stall = {"event": "stalled", "silent_s": 612, "stalls": 1}
    said = Watch().update(
        info(), log_records([line("2026-11-26T22:00:01Z", TASK1, json.dumps(stall), "ddp_node1")]), 0
    )
    assert said[-1] == (
        "job stalled: no step on ddp_node1 for 10 min 12 s (stall 1 in a row); the round re-forms from "
        "the newest snapshot, every worker's stacks are in its log"
    )
    # Where each of the node's ranks was, from its stacks: the stuck one named first.
    ranks = [
        {"rank": 3, "waits_in": "all_reduce"},
        {"rank": 4, "at": "train.py:12 in wait_for_data"},
        {"rank": 5, "waits_in": "all_reduce"},
        {"rank": 6},
    ]
    said = Watch().update(
        info(),
        log_records(
            [line("2026-11-26T22:00:01Z", TASK1, json.dumps({**stall, "ranks": ranks}), "ddp_node1")]
        ),
        0,
    )
    assert said[-1] == (
        "job stalled: no step on ddp_node1 for 10 min 12 s (stall 1 in a row): rank 4 is stuck at "
        "train.py:12 in wait_for_data; ranks 3, 5 wait in all_reduce; the round re-forms from the newest "
        "snapshot, every worker's stacks are in its log"
    )


def test_a_straggler_is_named_once_every_rank_printed_its_speed_over_the_epochs_and_speeds_print_nothing():
    def speeds(n: int, stamp: str) -> list[str]:
        return [
            line(
                stamp,
                TASK0 if rank == 0 else TASK1,
                json.dumps(
                    {"event": "rank_speed", "rank": rank, "host": f"node{rank}", "epoch": n, "world_size": 3}
                    | {"steps": 40, "step_s": 0.3, "own_s": 0.28 if rank == 2 else 0.1}
                ),
                f"ddp_node{rank}",
                f"node{rank}",
            )
            for rank in range(3)
        ]

    watch = Watch(stragglers=Stragglers(ratio=1.5, epochs=2))
    first = watch.update(info(), log_records(speeds(0, "2026-11-26T22:00:01Z")), 0)
    assert first == ["job running: 3 of 3 hosts up"]
    # Rank 2's line of epoch 2 comes a poll late (a remote node's log).
    second = log_records(speeds(1, "2026-11-26T22:00:11Z"))
    assert watch.update(info(), second[:2], 10) == []
    assert watch.update(info(), second, 20) == [
        "straggler: rank 2 on node2 takes 2.8x the median rank's own time per step (before the all-reduce), "
        "0.28 s against 0.1 s, for 2 epochs"
    ]
    assert watch.stragglers.found()[0]["rank"] == 2


def test_a_late_wait_hides_only_printed_records_and_keeps_every_speed():
    records = [json.loads(epoch(n, 10.0 * (n + 1))) for n in range(5)]
    # Epoch 1's speeds, from 2 of 3 ranks, printed before the epoch records the wait shows.
    records[:0] = [
        {"event": "rank_speed", "rank": r, "epoch": 0, "world_size": 3, "step_s": 0.2} for r in (0, 1)
    ]
    watch = Watch(backlog=3)
    said = watch.update(info("complete"), records, now=0.0)
    assert said[0] == "(2 earlier records not shown; the results keep them)"
    # They are kept, though older than the records shown, for rank 2's to come.
    assert len(said) == 4 and sorted(watch.speeds[0]) == [0, 1]


def test_the_network_nccl_chose_is_one_line_per_host_with_its_warning_said_again_only_when_it_changed():
    def nccl(network: str, devices: str, warnings: list[str], stamp: str) -> str:
        record = {"event": "nccl", "network": network, "devices": devices, "warnings": warnings}
        return line(stamp, TASK1, json.dumps(record), "ddp_node1", "node1")

    warning = "NCCL uses sockets ([0]eth0:10.0.1.12<0>) though this host has mlx5_0 in /sys/class/infiniband"
    watch = Watch()
    said = watch.update(
        info(), log_records([nccl("Socket", "[0]eth0:10.0.1.12<0>", [warning], "2026-11-26T22:00:01Z")]), 0
    )
    assert said[-2:] == [
        "ddp_node1: NCCL uses Socket ([0]eth0:10.0.1.12<0>)",
        f"warning: ddp_node1: {warning}",
    ]
    # The next round chose the same: nothing; then InfiniBand: said.
    assert (
        watch.update(
            info(),
            log_records([nccl("Socket", "[0]eth0:10.0.1.12<0>", [warning], "2026-11-26T22:01:01Z")]),
            1,
        )
        == []
    )
    assert watch.update(
        info(), log_records([nccl("IB", "[0]mlx5_0:1/IB", [], "2026-11-26T22:02:01Z")]), 2
    ) == ["ddp_node1: NCCL uses IB ([0]mlx5_0:1/IB)"]
