"""Where a stalled worker is, from the stacks it writes when the watchdog asks: two real gloo
ranks run through the image's worker wrapper, one waiting in all_reduce for the other, which is
stuck in its own code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import TRAINING, free_port
from torchswarm import stacks

SCRIPT = """
import os, time
import torch
import torch.distributed as dist

def wait_for_data():
    open(os.environ["READY"], "w").close()
    time.sleep(600)

dist.init_process_group("gloo")
if dist.get_rank() == 1:
    wait_for_data()
t = torch.ones(1)
open(os.environ["READY"], "w").close()
dist.all_reduce(t)
"""


def test_a_rank_waiting_in_a_collective_and_the_rank_stuck_in_its_own_code(tmp_path):
    script = tmp_path / "stalling.py"
    script.write_text(SCRIPT)
    prefix = str(tmp_path / "stacks")
    port = str(free_port())
    workers = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "PYTHONPATH": str(TRAINING),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "TORCHSWARM_STACKS_FILE": prefix,
            "READY": str(tmp_path / f"ready-{rank}"),
        }
        workers.append(subprocess.Popen([sys.executable, "-m", "torchswarm.worker", str(script)], env=env))
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{rank}").exists() for rank in (0, 1)):
            assert time.monotonic() < deadline, "the workers did not reach their wait"
            assert all(w.poll() is None for w in workers), "a worker exited"
            time.sleep(0.1)
        time.sleep(1)  # rank 0 from its marker into all_reduce
        for worker in workers:
            worker.send_signal(signal.SIGUSR1)
        time.sleep(1)
        files = stacks.files(prefix)
        assert sorted(files) == [0, 1]
        dumps = {rank: Path(path).read_text() for rank, path in files.items()}
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
    assert stacks.where(dumps[0]) == {"waits_in": "all_reduce"}, dumps[0]
    line = SCRIPT.splitlines().index("    time.sleep(600)") + 1
    assert stacks.where(dumps[1]) == {"at": f"stalling.py:{line} in wait_for_data"}, dumps[1]


def test_a_dump_without_the_scripts_thread_or_frames_says_nothing():
    assert stacks.where("") == {}
    library_only = (
        "Current thread 0x00007f00 (most recent call first):\n"
        '  File "/usr/lib/python3.11/threading.py", line 3 in wait\n'
    )
    assert stacks.where(library_only) == {}
