"""Recovery time of an elastic job after a lost host, over several runs: a worker, then node 0
(which here also takes the rendezvous store with it: a new, empty one starts after a delay, as
the swarm would start it on another manager).

    python benchmarks/recovery.py [RUNS] [PEER_TIMEOUT_S]

Three "hosts" on this machine: one launcher each (real torchrun, the bundled trainer, a real
TCPStore service), a host lost = its process tree stopped with SIGSTOP (nothing closes its
connections). Prints the seconds from the loss to the first trained step of the next round.
The swarm-level figures (the node container stopped, over the overlay) are printed by
molecule/default's test_7_elastic and test_8_node0_lost.
"""

from __future__ import annotations

import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))

from conftest import Cluster, epochs_of, first_steps_after, kill_tree, metrics, wait_for

STORE_MOVE_S = 10.0  # about how long the swarm takes to notice a dead manager and move a task


def one_run(victim: int, peer_timeout: str) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        cluster = Cluster(Path(scratch), epochs=40)
        try:
            for order in range(3):
                cluster.start(order, peer_timeout=peer_timeout)
            survivor = "node1"
            wait_for(lambda: 1 in epochs_of(metrics(cluster.snapdir(survivor))), timeout=300)
            kill_tree(cluster.procs[f"node{victim}"].pid, signal.SIGSTOP)
            lost = time.time()
            if victim == 0:
                time.sleep(STORE_MOVE_S)
                cluster.restart_store()

            def logs() -> str:
                return "".join(cluster.log(f"node{o}") for o in range(3) if o != victim)

            wait_for(lambda: first_steps_after(logs(), lost), timeout=300)
            return min(t for t, _unused in first_steps_after(logs(), lost)) - lost
        finally:
            cluster.close()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    peer_timeout = sys.argv[2] if len(sys.argv) > 2 else "10"
    print(f"recovery after a lost host, {runs} runs each, peer timeout {peer_timeout} s")
    for victim, what in ((2, "worker"), (0, f"node 0 and the store (new store after {STORE_MOVE_S:.0f} s)")):
        times = [one_run(victim, peer_timeout) for _unused in range(runs)]
        listed = ", ".join(f"{t:.1f}" for t in times)
        print(f"{what}: {listed} s; median {statistics.median(times):.1f} s, max {max(times):.1f} s")


if __name__ == "__main__":
    main()
