"""The trainer through real torchrun, two processes, gloo on CPU."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
from torch.utils.data.distributed import DistributedSampler

import snapshot
from conftest import epochs_of, finish, free_port, kill_tree, metrics, torchrun, wait_for
from training_code import EpochOrder, stop_every


def test_the_guides_command_line_trains_and_the_loss_falls(snapdir):
    rc, out = finish(torchrun(["4", "2", "--batch_size", "32", "--snapshot_dir", str(snapdir)]))
    assert rc == 0
    records = metrics(snapdir)
    assert epochs_of(records) == [0, 1, 2, 3]
    losses = [r["loss"] for r in records if r["event"] == "epoch"]
    assert losses[-1] < losses[0] * 0.9
    summary = records[-1]
    assert summary["event"] == "summary"
    assert (summary["world_size"], summary["device"], summary["backend"]) == (2, "cpu", "gloo")
    assert summary["resumed_from"] is None
    assert all(r["samples_per_s"] > 0 for r in records if r["event"] == "epoch")
    assert '"event": "summary"' in out  # the same lines reach stdout
    state = snapshot.load_newest(str(snapdir), "linear")[0]
    assert (state["epoch"], state["step"]) == (4, 0)
    # Every rank prints its speed each epoch (in its own log, not in the metrics).
    speeds = [json.loads(line) for line in re.findall(r'\{"event": "rank_speed".*\}', out)]
    assert sorted((r["epoch"], r["rank"]) for r in speeds) == [(e, r) for e in range(4) for r in range(2)]
    assert all(0 < r["own_s"] <= r["step_s"] for r in speeds), speeds
    assert all(r["event"] != "rank_speed" for r in records)


def test_the_newest_snapshots_are_kept_and_a_torn_newest_one_is_skipped_for_the_one_before_it(snapdir):
    """A shared filesystem that lost a write leaves a torn newest snapshot: the run resumes from
    the one before it, saying so, instead of stopping or starting over."""
    assert finish(torchrun(["3", "1", "--snapshot_keep", "2", "--snapshot_dir", str(snapdir)]))[0] == 0
    kept = sorted(p.name for p in snapdir.glob("snapshot-*.pt"))
    assert kept == ["snapshot-000002-00000000.pt", "snapshot-000003-00000000.pt"]  # epoch 1's went
    newest = snapdir / kept[-1]
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])

    rc, out = finish(torchrun(["4", "1", "--snapshot_dir", str(snapdir)]))

    assert rc == 0
    assert f"snapshot {newest} is corrupt and cannot be read" in out
    assert "resuming from the one before it" in out
    assert "rank 0 resumes at epoch 2 step 0" in out
    assert epochs_of(metrics(snapdir)) == [0, 1, 2, 3]
    assert snapshot.load_newest(str(snapdir), "linear")[0]["epoch"] == 4


def test_a_save_removes_snapshots_past_its_position_and_keeps_the_newest(tmp_path):
    """After a resume from the start of an interrupted epoch, a snapshot further into that epoch
    belongs to the run that went back, and must not be resumed from later."""
    state = {"format": 1, "workload": "linear", "model": {}, "optimizer": {}, "rng": None}
    for at in ((2, 0), (3, 0), (3, 50)):
        snapshot.save(str(tmp_path), {**state, "epoch": at[0], "step": at[1]}, keep=5)
    snapshot.save(str(tmp_path), {**state, "epoch": 3, "step": 10}, keep=2)
    assert [Path(p).name for p in snapshot.candidates(str(tmp_path))] == [
        "snapshot-000003-00000010.pt",
        "snapshot-000003-00000000.pt",
    ]


def test_a_finished_run_asked_for_more_epochs_resumes_at_the_first_untrained_epoch(snapdir):
    assert finish(torchrun(["3", "1", "--snapshot_dir", str(snapdir)]))[0] == 0
    rc, _unused = finish(torchrun(["5", "1", "--snapshot_dir", str(snapdir)]))
    assert rc == 0
    assert epochs_of(metrics(snapdir)) == [0, 1, 2, 3, 4]  # epoch 2 is not trained twice
    assert metrics(snapdir)[-1]["resumed_from"] == {"epoch": 3, "step": 0}


def test_a_run_killed_mid_training_resumes_and_every_epoch_runs_once(snapdir):
    """What the swarm does when a node's task dies: the whole torchrun goes, a new one starts."""
    args = ["8", "1", "--dataset_size", "16384", "--snapshot_dir", str(snapdir)]
    proc = torchrun(args)
    wait_for(lambda: 2 in epochs_of(metrics(snapdir)))
    kill_tree(proc.pid)  # torchrun and both workers, mid-epoch
    finish(proc)

    rc, _unused = finish(torchrun(args))

    assert rc == 0
    records = metrics(snapdir)
    assert epochs_of(records) == list(range(8))
    resumed = records[-1]["resumed_from"]
    assert resumed is not None and resumed["epoch"] >= 3 and resumed["step"] == 0


def test_epochs_trained_after_the_last_snapshot_are_counted_once_after_the_resume(snapdir):
    """Snapshots every 2 epochs: a kill after epoch 2's line sends the run back to epoch 2, and
    its first line must not stay in the metrics next to the retrained one."""
    args = ["6", "2", "--dataset_size", "32768", "--snapshot_dir", str(snapdir)]
    proc = torchrun(args)
    wait_for(lambda: 2 in epochs_of(metrics(snapdir)))
    kill_tree(proc.pid)
    finish(proc)

    rc, _unused = finish(torchrun(args))

    assert rc == 0
    records = metrics(snapdir)
    assert epochs_of(records) == list(range(6))
    assert records[-1]["resumed_from"]["epoch"] in (2, 4)


def run_two_nodes(epochs: str, rank0_dir, rank1_dir) -> list[tuple[int, str]]:
    """Two torchruns of one process each, every node with its own snapshot directory."""
    port = free_port()
    procs = [
        torchrun([epochs, "1", "--snapshot_dir", str(d)], nproc=1, nnodes=2, node_rank=r, port=port)
        for r, d in ((0, rank0_dir), (1, rank1_dir))
    ]
    return [finish(p) for p in procs]


def test_every_node_keeps_its_own_snapshot_and_metrics(tmp_path):
    node0, node1 = tmp_path / "node0", tmp_path / "node1"

    assert [rc for rc, _unused in run_two_nodes("2", node0, node1)] == [0, 0]

    for node in (node0, node1):
        state = snapshot.load_newest(str(node), "linear")[0]
        assert (state["epoch"], state["step"]) == (2, 0)
        assert epochs_of(metrics(node)) == [0, 1]
        assert metrics(node)[-1]["event"] == "summary"


def test_rank0_on_a_host_with_a_stale_snapshot_resumes_from_the_newest_copy_anywhere(tmp_path):
    """Rank 0 moves to a host that held rank 0 an epoch ago (a stale snapshot) or never (none):
    before, it resumed from that stale file or from epoch 0."""
    node0, node1, spare = tmp_path / "node0", tmp_path / "node1", tmp_path / "spare"
    assert [rc for rc, _unused in run_two_nodes("1", node0, node1)] == [0, 0]
    shutil.copytree(node0, spare)  # the spare host keeps epoch 1's snapshot
    assert [rc for rc, _unused in run_two_nodes("3", node0, node1)] == [0, 0]

    (rc0, out0), (rc1, out1) = run_two_nodes("5", spare, node1)  # rank 0 now on the spare host

    assert (rc0, rc1) == (0, 0)
    assert "rank 0 resumes at epoch 3 step 0" in out0
    assert "rank 1 resumes at epoch 3 step 0" in out1
    assert epochs_of(metrics(spare)) == [0, 1, 2, 3, 4]  # the job's metrics, on rank 0's new host
    assert [r["resumed_from"] for r in metrics(spare) if r["event"] == "summary"] == [
        None,
        {"epoch": 1, "step": 0},
        {"epoch": 3, "step": 0},
    ]


def test_sigterm_saves_a_snapshot_at_a_step_boundary_and_a_rerun_finishes(snapdir):
    args = ["50", "50", "--dataset_size", "65536", "--snapshot_dir", str(snapdir)]
    proc = torchrun(args)
    wait_for(lambda: 0 in epochs_of(metrics(snapdir)))
    proc.send_signal(signal.SIGTERM)  # what `docker service rm` sends to the task's PID 1

    rc, out = finish(proc, timeout=60)

    assert rc != 0  # a stopped rank is not a finished one: the swarm restarts it
    assert "stopped at epoch" in out
    stopped = [r for r in metrics(snapdir) if r["event"] == "stopped"]
    assert len(stopped) == 1
    state = snapshot.load_newest(str(snapdir), "linear")[0]
    assert (state["epoch"], state["step"]) == (stopped[0]["epoch"], stopped[0]["step"])
    assert state["step"] > 0  # mid-epoch, at a step boundary

    rc, _unused = finish(torchrun(["2", "1", "--dataset_size", "65536", "--snapshot_dir", str(snapdir)]))
    assert rc == 0
    assert metrics(snapdir)[-1]["resumed_from"] == {"epoch": state["epoch"], "step": state["step"]}


@pytest.mark.parametrize(
    ("step_s", "every"), [(0.006, 64), (0.02, 50), (0.25, 4), (1.0, 1), (30.0, 1), (0.0, 64)]
)
def test_a_stop_is_agreed_about_a_second_apart_and_after_every_step_when_steps_are_slow(step_s, every):
    assert stop_every(step_s, 1.0, 64) == every


def test_a_rerun_at_another_world_size_goes_on_past_the_samples_trained_not_from_the_epochs_start(snapdir):
    """A host left (or joined): the snapshot at the agreed step was taken at world size 2, the
    next round has 3 ranks. It trains the rest of the epoch's order, not the epoch again."""
    args = ["50", "50", "--dataset_size", "65536", "--snapshot_dir", str(snapdir)]
    proc = torchrun(args)
    wait_for(lambda: 0 in epochs_of(metrics(snapdir)))
    proc.send_signal(signal.SIGTERM)
    assert finish(proc, timeout=60)[0] != 0
    state = snapshot.load_newest(str(snapdir), "linear")[0]
    trained = state["step"] * 2 * 32  # steps x world size x batch size
    assert state["step"] > 0 and state["samples"] == trained

    rc, out = finish(torchrun(["2", "1", "--dataset_size", "65536", "--snapshot_dir", str(snapdir)], nproc=3))

    assert rc == 0
    assert f"rank 0 resumes at epoch 1 step 0 (snapshot of rank 0), past the {trained} samples of it" in out
    records = metrics(snapdir)
    assert records[-1]["resumed_from"] == {"epoch": 1, "step": 0, "trained_before": trained}
    [epoch1] = [r for r in records if r["event"] == "epoch" and r["epoch"] == 1]
    assert epoch1["world_size"] == 3 and epoch1["steps"] == (65536 - trained) // 3 // 32


def test_the_epochs_order_split_again_past_an_offset_takes_every_sample_once():
    """EpochOrder: 10 steps at world size 3, then the rest at world size 2, cover the epoch's
    order exactly once; with no offset it is DistributedSampler's order."""
    data, batch = list(range(1000)), 8

    def shares(world: int, offset: int = 0, sampler=EpochOrder) -> list[list[int]]:
        out = []
        for rank in range(world):
            s = sampler(data, num_replicas=world, rank=rank, seed=7, drop_last=True)
            s.set_epoch(3)
            s.offset = offset
            out.append(list(s))
            assert len(s) == len(out[-1])
        return out

    assert shares(3) == shares(3, sampler=DistributedSampler)
    first = [share[: 10 * batch] for share in shares(3)]
    rest = shares(2, offset=10 * batch * 3)
    seen = [i for share in first + rest for i in share]
    assert sorted(seen) == data  # 240 + 2 x 380: all 1000, none twice


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a torch file", "is corrupt and cannot be read"),
        (None, "was written by workload 'gpt', this run is 'linear'"),
    ],
    ids=["garbage", "other-workload"],
)
def test_a_bad_snapshot_stops_every_rank_with_a_clear_error(snapdir, content, message):
    snapdir.mkdir(parents=True)
    path = snapdir / "snapshot.pt"  # as trainers before snapshot_keep wrote it
    if content is None:
        state = {
            "format": 1,
            "workload": "gpt",
            "epoch": 1,
            "step": 0,
            "model": {},
            "optimizer": {},
            "rng": None,
        }
        path = Path(snapshot.save(str(snapdir), state, keep=2))
    else:
        path.write_bytes(content)

    rc, out = finish(torchrun(["2", "1", "--snapshot_dir", str(snapdir)]), timeout=120)

    assert rc != 0
    assert message in out
    # Node 0 read it; both ranks say why, neither hangs.
    assert out.count(f"torchswarm: rank 0 on {socket.gethostname()}: snapshot {path}") == 2
    assert epochs_of(metrics(snapdir)) == []


def test_zero_steps_per_epoch_is_refused_before_training_and_not_retried(snapdir):
    """Before: exit 0 with steps 0 and loss 0.0, reported as a finished job."""
    rc, out = finish(
        torchrun(["2", "1", "--batch_size", "5000", "--snapshot_dir", str(snapdir)], entrypoint=True)
    )

    assert rc == 3
    assert (
        "no training step per epoch: the dataset's 2048 items split over world size 2 give each rank 1024"
        in out
    )
    assert "(--batch_size 5000)" in out
    assert "torchswarm: not retrying (exit 3)" in out
    assert metrics(snapdir) == []


def test_an_unwritable_snapshot_dir_is_refused_before_the_first_step(tmp_path):
    """Before: found at the first snapshot, an epoch later, and again after every restart."""
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    snapdir = not_a_dir / "snapshots"
    started = time.monotonic()
    rc, out = finish(
        torchrun(["2", "1", "--dataset_size", "200000", "--snapshot_dir", str(snapdir)], entrypoint=True)
    )

    assert rc == 3
    assert f"the snapshot directory {snapdir} is not writable" in out
    assert '"event": "epoch"' not in out
    assert time.monotonic() - started < 60  # an epoch of 200000 items takes minutes here


def test_bad_arguments_are_refused_and_not_retried(snapdir):
    rc, out = finish(torchrun(["2", "1", "--modle", "gpt"], entrypoint=True))
    assert rc == 3
    assert "unrecognized arguments: --modle gpt" in out


def test_the_launcher_passes_an_ordinary_failure_on_for_the_swarm_to_retry(snapdir):
    """Exit 2 (a damaged snapshot) and the like stay what they were: torchrun's non-zero code."""
    snapdir.mkdir(parents=True)
    (snapdir / "snapshot.pt").write_bytes(b"garbage")
    rc, out = finish(torchrun(["2", "1", "--snapshot_dir", str(snapdir)], entrypoint=True))
    assert rc not in (0, 3)
    assert "is corrupt" in out
