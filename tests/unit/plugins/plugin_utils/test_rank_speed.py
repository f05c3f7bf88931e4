"""Per-rank speed: the stragglers, the status table and the plot's series, from rank_speed records
as the image's torchswarm.speed prints them."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.plugin_utils._rank_speed import (
    Stragglers,
    by_epoch,
    complete,
    series,
    slow_ranks,
    table,
)


def speed(rank: int, epoch: int, own: float | None, step: float = 0.2, world: int = 3) -> dict:
    record = {
        "event": "rank_speed",
        "rank": rank,
        "host": f"node{rank}",
        "epoch": epoch,
        "world_size": world,
        "steps": 100,
        "step_s": step,
    }
    return record if own is None else {**record, "own_s": own}


def epoch_of(epoch: int, owns: list[float | None], step: float = 0.2) -> list[dict]:
    return [speed(rank, epoch, own, step, len(owns)) for rank, own in enumerate(owns)]


def test_the_rank_whose_own_time_is_over_the_ratio_of_the_median_is_slow():
    assert slow_ranks(epoch_of(0, [0.05, 0.05, 0.19]), 1.5) == {2: 3.8}
    assert slow_ranks(epoch_of(0, [0.05, 0.06, 0.07]), 1.5) == {}
    # Tiny own times next to the step are noise: 3x, but 0.02 s of a 0.5 s step.
    assert slow_ranks(epoch_of(0, [0.01, 0.01, 0.03], step=0.5), 1.5) == {}
    # Without ready(), the step time is compared (the same on every DDP rank: nobody is slow).
    assert slow_ranks(epoch_of(0, [None, None, 0.19]), 1.5) == {}
    assert slow_ranks([speed(0, 0, None, 0.2), speed(1, 0, None, 0.2), speed(2, 0, None, 0.9)], 1.5) == {
        2: 4.5
    }
    assert slow_ranks(epoch_of(0, [0.05]), 1.5) == {}
    # Own times below the records' resolution: the ratio stays a number summary.json can hold.
    assert slow_ranks(epoch_of(0, [0.0, 0.0, 0.1]), 1.5) == {2: pytest.approx(1e5)}


def test_a_rank_slow_for_the_epochs_in_a_row_is_named_once_with_its_host_and_again_after_it_kept_up():
    watch = Stragglers(ratio=1.5, epochs=3)
    said = [watch.epoch(by_epoch(epoch_of(e, [0.05, 0.05, 0.15]))[e]) for e in range(4)]
    assert said[:2] == [[], []] and said[3] == []
    assert said[2] == [
        "straggler: rank 2 on node2 takes 3.0x the median rank's own time per step (before the "
        "all-reduce), 0.15 s against 0.05 s, for 3 epochs"
    ]
    assert watch.found() == [
        {"rank": 2, "host": "node2", "times_median": 3.0, "epochs": 4, "slow_at_end": True}
    ]
    # It keeps up for an epoch: still listed, no longer slow; slow again for 3: named again.
    assert watch.epoch(by_epoch(epoch_of(4, [0.05, 0.05, 0.05]))[4]) == []
    assert watch.found()[0]["slow_at_end"] is False
    again = [watch.epoch(by_epoch(epoch_of(e, [0.05, 0.05, 0.25]))[e]) for e in range(5, 8)]
    assert again[:2] == [[], []] and again[2][0].startswith("straggler: rank 2 on node2 takes 5.0x")
    assert watch.found() == [
        {"rank": 2, "host": "node2", "times_median": 5.0, "epochs": 4, "slow_at_end": True}
    ]


def test_a_rank_slow_now_and_then_is_never_named():
    watch = Stragglers(ratio=1.5, epochs=3)
    for e in range(9):
        owns = [0.05, 0.05, 0.15 if e % 3 else 0.05]
        assert watch.epoch(by_epoch(epoch_of(e, owns))[e]) == []
    assert watch.found() == []


def test_an_epoch_is_complete_when_every_rank_of_its_world_printed_it_and_a_later_record_replaces():
    records = [*epoch_of(0, [0.05, 0.05, 0.15]), speed(0, 1, 0.05), speed(1, 1, 0.05)]
    records.append({**speed(2, 0, 0.05), "host": "node2-after-restart"})
    epochs = by_epoch(records)
    assert complete(epochs[0]) and not complete(epochs[1])
    assert epochs[0][2]["host"] == "node2-after-restart"
    # A rank with one step in an epoch has no step time: not usable.
    one_step = {k: v for k, v in speed(0, 2, None).items() if k != "step_s"}
    assert 2 not in by_epoch([one_step])


def test_a_whole_runs_stragglers_and_each_ranks_series_by_epoch():
    records = [r for e in range(4) for r in epoch_of(e, [0.05, 0.05, 0.15])]
    records += [speed(0, 4, 0.05), speed(1, 4, 0.05)]  # rank 2's host was lost in epoch 5
    assert Stragglers(epochs=3).run(records) == [
        {"rank": 2, "host": "node2", "times_median": 3.0, "epochs": 4, "slow_at_end": True}
    ]
    assert Stragglers(epochs=5).run(records) == []
    lines = series(records)
    assert sorted(lines) == ["rank 0 (node0)", "rank 1 (node1)", "rank 2 (node2)"]
    assert lines["rank 2 (node2)"] == [(1, 0.15), (2, 0.15), (3, 0.15), (4, 0.15)]
    assert lines["rank 0 (node0)"][-1] == (5, 0.05)


def test_the_status_table_shows_the_newest_complete_epoch_with_the_median_and_the_straggler():
    records = [
        *epoch_of(0, [0.05, 0.05, 0.15]),
        *epoch_of(1, [0.04, 0.06, 0.16], step=0.25),
        speed(0, 2, 0.05),
    ]
    assert table(records) == [
        "speed of each rank in epoch 2 (seconds per step; OWN: before the all-reduce)",
        "RANK    HOST   STEPS/S  STEP S  OWN S",
        "0       node0  4.00     0.25    0.04",
        "1       node1  4.00     0.25    0.06",
        "2       node2  4.00     0.25    0.16   straggler: 2.7x the median",
        "median         4.00     0.25    0.06",
    ]
    without_ready = table([speed(0, 0, None, world=2), speed(1, 0, None, world=2)])
    assert without_ready[-1] == "median         5.00     0.2     -"
    assert table([speed(0, 0, 0.1)]) == []
