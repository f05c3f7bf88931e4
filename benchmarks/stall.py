"""The stall watchdog: seconds from a rank that stops answering to the job's next trained step.

    python benchmarks/stall.py [RUNS] [TIMEOUT_S ...]

Three "hosts" on this machine, one launcher each (real torchrun, a real TCPStore), running a
user's script with its own resume: every step an all_reduce and torchswarm.step(). Rank 1 stops
answering once, after 5 steps, its process alive (a sleep, as a deadlocked DataLoader); the others
wait in all_reduce. Per timeout and run: the seconds from the hang to the next trained step (the
watchdog's timeout, the stacks, the round's end and re-forming, torch's start and the resume), and
what of that is beyond the timeout. Defaults: 2 runs each of 10 and 30 s.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

from conftest import Cluster, wait_for

SCRIPT = """
import os, time
import torch
import torch.distributed as dist
import torchswarm

dist.init_process_group("gloo")
reached = os.path.join(os.environ["TORCHSWARM_SNAPSHOT_DIR"], "reached")
step = int(open(reached).read()) if os.path.exists(reached) else 0
marker = os.environ["HANG_ONCE"]
while step < 60:
    if dist.get_rank() == 1 and step == 5 and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)
    t = torch.ones(1)
    dist.all_reduce(t)
    step += 1
    torchswarm.step()
    open(reached, "w").write(str(step))
    if dist.get_rank() == 0:
        print(f"benchmark step {step} at {time.time():.3f}", flush=True)
    time.sleep(0.1)
"""
STEP = re.compile(r"benchmark step (\d+) at ([0-9.]+)")


def one_run(timeout: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "stalling.py").write_text(SCRIPT)
        marker = work / "hung"
        env = {"TORCHSWARM_STALL_TIMEOUT": str(timeout), "HANG_ONCE": str(marker)}
        cluster = Cluster(work, epochs=1, script=str(work / "stalling.py"), env=env)
        try:
            for order in range(3):
                cluster.start(order)
            wait_for(marker.exists, timeout=300, interval=0.05)
            hung = marker.stat().st_mtime

            def next_step() -> float | None:
                log = "".join(cluster.log(n) for n in ("node0", "node1", "node2"))
                after = [float(t) for _unused, t in STEP.findall(log) if float(t) > hung + 1]
                return min(after) if after else None

            wait_for(lambda: next_step() is not None, timeout=timeout * 3 + 300, interval=0.2)
            return next_step() - hung
        finally:
            cluster.close()


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv else 2
    timeouts = [int(t) for t in argv[1:]] or [10, 30]
    print(f"{'timeout s':>9}  {'hang to next step s':>20}  {'beyond the timeout s':>21}")
    for timeout in timeouts:
        seconds = [one_run(timeout) for _unused in range(runs)]
        median = statistics.median(seconds)
        each = ", ".join(f"{s:.1f}" for s in seconds)
        print(f"{timeout:>9}  {median:>20.1f}  {median - timeout:>21.1f}   (runs: {each})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
