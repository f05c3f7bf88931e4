"""The elastic launcher on this machine: a real rendezvous store (torchswarm.store), one launcher
per "node" with its own snapshot directory, real torchrun and the bundled trainer. A lost host is
its whole process tree stopped with SIGSTOP: its sockets stay open and nothing answers, as when a
host's power is cut (a killed process would close its connections and be noticed at once)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import TRAINING, Cluster, epochs_of, first_steps_after, kill_tree, metrics, running, wait_for
from torchswarm.elastic import round_command
from torchswarm.launcher import Outcome
from torchswarm.rendezvous import Member, Rendezvous, Round, Settings


@pytest.fixture
def cluster(tmp_path: Path):
    made: list[Cluster] = []

    def make(**kwargs) -> Cluster:
        made.append(Cluster(tmp_path, **kwargs))
        return made[-1]

    yield make
    for c in made:
        for name in c.logs:
            print(f"--- {name}\n{c.log(name)}")
        c.close()


def test_a_silent_host_is_dropped_the_rest_train_on_and_it_rejoins_when_back(cluster):
    c = cluster(epochs=12)
    for order in range(3):
        c.start(order)
    wait_for(lambda: 1 in epochs_of(metrics(c.snapdir("node0"))), timeout=180)

    kill_tree(c.procs["node2"].pid, signal.SIGSTOP)  # node2's host is gone
    lost = time.time()
    wait_for(lambda: first_steps_after(c.log("node0"), lost), timeout=120)
    resumed, world = first_steps_after(c.log("node0"), lost)[0]
    print(f"lost host: training resumed {resumed - lost:.1f} s after the loss, world size {world}")
    assert world == 2
    assert "ends: node2 is gone" in c.log("node0") + c.log("node1")

    # An epoch trained whole by the two, before the host comes back (a fresh start: its old
    # processes are gone with the old power).
    def trained_by_two() -> bool:
        records = metrics(c.snapdir("node0"))
        return any(r["world_size"] == 2 for r in records if r["event"] == "epoch")

    wait_for(trained_by_two, timeout=120)
    kill_tree(c.procs["node2"].pid)
    c.procs["node2"].wait()
    back = time.time()
    c.start(2)
    wait_for(lambda: any(w == 3 for _unused, w in first_steps_after(c.log("node0"), back)), timeout=120)
    assert "ends: node2 is joining" in c.log("node0") + c.log("node1")

    for name in ("node0", "node1", "node2"):
        assert c.procs[name].wait(timeout=300) == 0, name
    records = metrics(c.snapdir("node0"))
    assert epochs_of(records) == list(range(12)), "an epoch was counted twice or lost"
    assert records[-1]["event"] == "summary" and records[-1]["world_size"] == 3
    assert {r["world_size"] for r in records if r["event"] == "epoch"} >= {2, 3}


def test_a_stop_while_waiting_for_peers_exits_at_once_for_the_swarm_to_restart(cluster):
    """Before: a launcher waiting in the rendezvous ignored SIGTERM until Docker's SIGKILL."""
    c = cluster(epochs=2)
    c.start(0)
    wait_for(lambda: "joining the rendezvous" in c.log("node0"), timeout=60)
    c.procs["node0"].send_signal(signal.SIGTERM)
    assert c.procs["node0"].wait(timeout=10) == 143
    assert "stopped by a signal between rounds" in c.log("node0")


def test_input_no_restart_can_fix_ends_every_rank_with_exit_3_not_another_round(cluster):
    c = cluster(epochs=2, extra=("--batch_size", "100000"))
    for order in range(3):
        c.start(order)
    assert [c.procs[f"node{o}"].wait(timeout=120) for o in range(3)] == [3, 3, 3]


def test_a_script_failing_at_its_start_on_every_node_ends_every_rank_with_exit_3_after_the_attempts(
    cluster, tmp_path
):
    """Whichever node ends a round, each node whose own workers failed counts it; a launcher that
    exits otherwise is started again, as the swarm restarts its task (same snapshot directory)."""
    script = tmp_path / "early.py"
    script.write_text("import no_such_module_in_the_image\n")
    c = cluster(epochs=2, script=str(script))
    for order in range(3):
        c.start(order)
    exits: dict[str, list[int]] = {f"node{o}": [] for o in range(3)}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not all(codes[-1:] == [3] for codes in exits.values()):
        for order, name in enumerate(exits):
            code = c.procs[name].poll()
            if code is not None and exits[name][-1:] != [3]:
                exits[name].append(code)
                if code != 3:
                    c.start(order)
        time.sleep(0.2)

    assert all(codes[-1:] == [3] for codes in exits.values()), exits
    for name in exits:
        assert "the script failed 3 times in a row before its first step: rank" in c.log(name)
        assert "ModuleNotFoundError: No module named 'no_such_module_in_the_image' (early.py:1)" in c.log(
            name
        )


# A user's script with its own resume (the step it reached, in its node's snapshot directory):
# every step an all_reduce and torchswarm.step(). One rank stops answering after a few steps, its
# process alive (a deadlocked DataLoader, a filesystem that hangs); the others wait in all_reduce.
# With HANG_ONCE, only until the marker exists (the first time); without it, every run.
STALLING_SCRIPT = """
import os, sys, time
import torch
import torch.distributed as dist
import torchswarm

def wait_for_data(seconds):
    time.sleep(seconds)

dist.init_process_group("gloo")
mine = os.path.join(os.environ["TORCHSWARM_SNAPSHOT_DIR"], "reached")
step = int(open(mine).read()) if os.path.exists(mine) else 0
began = step
while step < 40:
    once = os.environ.get("HANG_ONCE")
    if dist.get_rank() == 1 and step >= began + 5 and not (once and os.path.exists(once)):
        if once:
            open(once, "w").close()
        wait_for_data(3600)
    t = torch.ones(1)
    dist.all_reduce(t)
    step += 1
    torchswarm.step()
    open(mine, "w").write(str(step))
    time.sleep(0.05)
print(f"stalling script: rank {dist.get_rank()} done at step {step}", flush=True)
dist.destroy_process_group()
"""


def test_a_rank_stuck_with_its_host_up_is_found_by_the_watchdog_and_the_job_re_forms_and_finishes(
    cluster, tmp_path
):
    script = tmp_path / "stalling.py"
    script.write_text(STALLING_SCRIPT)
    env = {"TORCHSWARM_STALL_TIMEOUT": "5", "HANG_ONCE": str(tmp_path / "hung-once")}
    c = cluster(epochs=1, nodes=2, min_nodes=2, script=str(script), env=env)
    for order in range(2):
        c.start(order)

    assert [c.procs[f"node{o}"].wait(timeout=180) for o in range(2)] == [0, 0]
    logs = c.log("node0") + c.log("node1")
    assert "torchswarm: job stalled: no step for" in logs and "stall 1 in a row" in logs
    # The stuck worker's stack, printed before the kill: where it waits.
    assert re.search(r'File ".*stalling\.py", line \d+ in wait_for_data', c.log("node1")), c.log("node1")
    # And what the wait shows: the stuck rank, where; a rank that waits for it, in which collective.
    stuck = r'"ranks": \[\{"rank": 1, "at": "stalling\.py:\d+ in wait_for_data"\}\]'
    assert re.search(stuck, c.log("node1")), c.log("node1")
    if '"event": "stalled"' in c.log("node0"):  # its watchdog, too, fired before the round ended
        assert '"ranks": [{"rank": 0, "waits_in": "all_reduce"}]' in c.log("node0")
    assert logs.count("stalling script: rank") == 2 and "done at step 40" in logs
    # The stuck worker was killed with its round, not left beside the next one.
    assert not running(str(script)), running(str(script))


def test_a_job_that_stalls_every_time_fails_after_the_restarts_with_the_reason(cluster, tmp_path):
    script = tmp_path / "stalling.py"
    script.write_text(STALLING_SCRIPT)
    env = {"TORCHSWARM_STALL_TIMEOUT": "5", "TORCHSWARM_STALL_RESTARTS": "1"}
    c = cluster(epochs=1, nodes=2, min_nodes=2, script=str(script), env=env)
    for order in range(2):
        c.start(order)

    codes = [c.procs[f"node{o}"].wait(timeout=180) for o in range(2)]
    logs = c.log("node0") + c.log("node1")
    assert 3 in codes, codes
    assert "not retrying (exit 3): the job stalled 2 times in a row (no step for 5 s each time" in logs
    assert not running(str(script)), running(str(script))


@pytest.mark.parametrize(
    ("code", "fatal_reason", "stopped", "again"),
    [
        (1, "", False, True),
        (3, "batch too large", False, False),
        (143, "", True, False),
        (0, "", False, False),
    ],
    ids=["failed-with-its-peers", "refused", "stopped", "finished"],
)
def test_after_the_members_changed_only_an_ordinary_failure_joins_the_next_round(
    tmp_path, code, fatal_reason, stopped, again
):
    """A rank that refused its input must exit 3 even when a peer ended the round first."""
    env = {"TORCHSWARM_FATAL_FILE": str(tmp_path / "fatal"), "TORCHSWARM_FINISHED_FILE": str(tmp_path / "f")}
    (tmp_path / "fatal").write_text(fatal_reason)
    (tmp_path / "f").write_text("")
    stop = type("S", (), {"requested": stopped})()
    assert Outcome(code, env, stop).again(members_changed=True) is again
    assert Outcome(code, env, stop).again(members_changed=False) is False


@pytest.mark.parametrize(
    ("stopped", "again"), [(False, True), (True, False)], ids=["a-peer-was-stopped", "stopped"]
)
def test_ranks_that_stopped_with_a_stopped_peer_join_the_next_round_before_it_ends_the_round(
    tmp_path, stopped, again
):
    """SIGTERM to one node's ranks is agreed by every rank: all snapshot and exit 143. The other
    nodes' launchers may look before the stopped node's launcher ends the round; they rejoin all
    the same, rather than exit for the swarm to restart them. This node's own stop still exits."""
    env = {name: str(tmp_path / name) for name in ("fatal", "finished", "stopped")}
    env = {f"TORCHSWARM_{name.upper()}_FILE": path for name, path in env.items()}
    for path in env.values():
        Path(path).write_text("")
    Path(env["TORCHSWARM_STOPPED_FILE"]).write_text("1 3\n")  # what the worker wrapper writes
    stop = type("S", (), {"requested": stopped})()
    assert Outcome(1, env, stop).again(members_changed=False) is again


def test_the_worker_wrapper_records_a_rank_that_stopped_after_a_snapshot(tmp_path):
    script = tmp_path / "stops.py"
    script.write_text("import sys\nsys.exit(143)\n")
    env = {**os.environ, "TORCHSWARM_STOPPED_FILE": str(tmp_path / "stopped"), "RANK": "2", "WORLD_SIZE": "3"}
    env["PYTHONPATH"] = str(TRAINING)
    proc = subprocess.run([sys.executable, "-m", "torchswarm.worker", str(script)], env=env, check=False)
    assert proc.returncode == 143 and (tmp_path / "stopped").read_text() == "2 3\n"


def test_each_round_runs_torchrun_for_its_own_members():
    command = ["torchrun", "--nproc_per_node=2", "--nnodes=3", "--node_rank", "2", "--master_addr=a"]
    command += ["--master_port=12355", "train.py", "--nnodes=9"]
    me = Member(2, "c", "10.0.0.3")
    current = Round(4, (Member(1, "b", "10.0.0.2"), me), me, port_offset=7)

    assert round_command(command, 1, len(command) - 2, current) == [
        "torchrun",
        "--nnodes=2",
        "--node_rank=1",
        "--master_addr=10.0.0.2",
        "--master_port=12362",
        "--nproc_per_node=2",
        "train.py",
        "--nnodes=9",  # the script's own argument, not torchrun's
    ]


# --- the rounds themselves, against a real TCPStore, with short timings --------------------


@pytest.fixture
def store():
    import datetime

    from torch.distributed import TCPStore

    server = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    yield lambda: TCPStore("127.0.0.1", server.port, is_master=False, timeout=datetime.timedelta(seconds=5))


def node(store, order: int, **settings) -> Rendezvous:
    chosen = Settings(
        **{"min_nodes": 2, "max_nodes": 3, "last_call": 0.2, "first_call": 1.5, "poll": 0.05, **settings}
    )
    return Rendezvous(store(), "gen", Member(order, f"n{order}", f"10.0.0.{order}"), chosen)


def join_all(*nodes: Rendezvous) -> list[Round]:
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(lambda n: n.join(), nodes))


def test_a_first_round_waits_for_every_node_and_a_re_formed_one_only_for_min_nodes(store):
    a, b = node(store, 0), node(store, 1)
    started = time.monotonic()
    first = join_all(a, b)
    assert time.monotonic() - started >= 1.5, "the first round did not wait for the third node"
    assert [m.node for m in first[0].members] == ["n0", "n1"] and first[1].node_rank == 1

    a.end(first[0].number, "test", lost=False)
    a.trained = b.trained = True  # they trained: the next round re-forms after last_call
    started = time.monotonic()
    second = join_all(a, b)
    assert time.monotonic() - started < 1.5 and second[0].number == first[0].number + 1


def test_a_silent_member_is_lost_and_a_newcomer_ends_the_round(store):
    a, b, c = node(store, 0, peer_timeout=0.5), node(store, 1), node(store, 2)
    current = join_all(a, b, c)[0]
    assert a.check(current) is None
    c.beat()
    time.sleep(0.6)  # b never beats; c beat once, then fell silent too
    reason, lost = a.check(current)
    assert lost and reason.startswith("n1 is gone")

    d = node(store, 3)
    d.store.add(d.key("r", current.number, "n"), 1)  # as join() registers, without blocking
    d.store.set(d.key("r", current.number, "m", 4), d.me.text())
    b.trained = True
    assert b.check(current) == ("n3 is joining", False)
    b.end(current.number, "n3 is joining", lost=False)
    assert a.check(current) == (f"round {current.number} was ended by n1: n3 is joining", False)
