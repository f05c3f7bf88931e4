"""A host that leaves for maintenance against a host that is lost, for an elastic job:

    python benchmarks/maintenance.py [RUNS] [OUT_S]

Three "hosts" on this machine: one launcher each (real torchrun, the bundled trainer, a real
TCPStore). Maintenance = SIGTERM to the host's launcher, as Docker's drain sends it (the ranks
agree on a step, snapshot and stop; the round ends as a stop), then the launcher started again
after OUT_S seconds (default 20). Lost = the host's process tree stopped with SIGSTOP (nothing
closes its connections), then continued after OUT_S seconds. Per case and run: the seconds from
the event to training at N-1 (no rank trains meanwhile), the samples of the epoch the next round
trains again (its resume point against where training was), the seconds at N-1, and the seconds
from the host's return to training at N. The swarm-level figures (drain and return through
maintenance.yml, over the overlay) are printed by molecule/default's test_7_maintenance.
"""

from __future__ import annotations

import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

from conftest import Cluster, epochs_of, first_steps_after, kill_tree, metrics, wait_for

RESUMES = re.compile(
    r"rank 0 resumes at epoch (\d+) step (\d+) \(snapshot of rank \d+\)(?:, past the (\d+) samples)?"
)
STOPPED = re.compile(r"rank 0 stopped at epoch (\d+) step (\d+)")
VICTIM, SURVIVORS = "node2", ("node0", "node1")
BATCH = 32  # the trainer's default batch size, as Cluster runs it


def next_epoch(cluster: Cluster) -> tuple[float, dict]:
    """The wall time at which the next epoch record appears, and the record."""
    seen = len(epochs_of(metrics(cluster.snapdir("node1"))))
    wait_for(lambda: len(epochs_of(metrics(cluster.snapdir("node1")))) > seen, timeout=300, interval=0.05)
    return time.time(), [r for r in metrics(cluster.snapdir("node1")) if r["event"] == "epoch"][-1]


def one_run(case: str, out_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        cluster = Cluster(Path(scratch), epochs=40)
        try:
            for order in range(3):
                cluster.start(order, peer_timeout="10")
            # The event comes 60% into an epoch, in both cases.
            ended, record = next_epoch(cluster)
            pace = record["samples_per_s"] / (BATCH * record["world_size"])  # steps a second
            time.sleep(0.6 * record["steps"] / pace)

            def logs(cluster=cluster) -> str:
                return "".join(cluster.log(n) for n in SURVIVORS)

            before = len(RESUMES.findall(logs()))
            pid = cluster.procs[VICTIM].pid
            event = time.time()
            if case == "maintenance":
                cluster.procs[VICTIM].send_signal(signal.SIGTERM)  # as Docker stops a container
            else:
                kill_tree(pid, signal.SIGSTOP)
            wait_for(lambda: first_steps_after(logs(), event), timeout=300)
            at_n1 = min(t for t, _unused in first_steps_after(logs(), event))
            # Where the next round resumes and where training was, in samples of the epoch's order
            # (3 ranks of BATCH before the event; the resumed round splits the rest).
            epoch, step, past = RESUMES.findall(logs())[before]
            resumed = (int(epoch), int(past or 0) + int(step) * BATCH * 2)
            if case == "maintenance":  # every rank stops at one agreed step, after a snapshot
                stop_epoch, stop_step = map(int, STOPPED.findall(logs() + cluster.log(VICTIM))[-1])
            else:  # no snapshot at the loss: where training was, from the epoch's pace
                stop_epoch, stop_step = record["epoch"] + 1, int((event - ended) * pace)
            trained = stop_step * BATCH * 3
            retrained = trained - resumed[1] if stop_epoch == resumed[0] else trained
            time.sleep(max(0.0, at_n1 + out_s - time.time()))
            back = time.time()
            if case == "maintenance":
                cluster.start(2, peer_timeout="10")
            else:
                kill_tree(pid, signal.SIGCONT)
            wait_for(lambda: any(w == 3 for _unused, w in first_steps_after(logs(), back)), timeout=300)
            at_n = min(t for t, w in first_steps_after(logs(), back) if w == 3)
            return {
                "to N-1 s": at_n1 - event,
                "samples retrained": float(retrained),
                "at N-1 s": back - at_n1,
                "back to N s": at_n - back,
            }
        finally:
            cluster.close()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    out_s = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    print(f"a host out of 3 for about {out_s:.0f} s, {runs} runs each (peer timeout 10 s, last call 2 s)")
    header = ("case", "to N-1 s", "samples retrained", "at N-1 s", "back to N s")
    print(" | ".join(header))
    for case in ("maintenance", "lost"):
        results = [one_run(case, out_s) for _unused in range(runs)]
        cells = [
            "/".join(f"{r[k]:.0f}" if k == "samples retrained" else f"{r[k]:.1f}" for r in results)
            + f" (median {statistics.median(r[k] for r in results):.1f})"
            for k in header[1:]
        ]
        print(" | ".join([case, *cells]))


if __name__ == "__main__":
    main()
