"""A host dies mid-training (its node container stopped: no RST, no goodbye) and nobody touches
the inventory: the others notice its silence, re-form without it and train on; when the host
comes back it rejoins the running job and the world size grows back. Runs after test_6 (node2
is gone; node3, node0 and node1 remain, node3 as node rank 0)."""

from __future__ import annotations

import subprocess
import time

from conftest import (
    epochs_of,
    figure,
    first_steps_after,
    metrics,
    ranks_complete,
    run_site_playbook,
    wait_for,
)

STACK = "elastic"
HOSTS = ("node3", "node0", "node1")


def test_a_lost_host_is_dropped_without_a_human_and_rejoins_when_it_is_back(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {"job_node_rank": 0}
    for rank, host in enumerate(("node0", "node1"), start=1):
        group = "managers" if host == "node0" else "workers"
        inventory[group]["hosts"][host] = {"job_node_rank": rank}
    inventory["workers"]["hosts"]["node2"] = {"swarm_node_state": "absent"}
    inventory["all"]["vars"].update(
        job_name=STACK,
        job_wait=False,
        job_epochs=20,
        job_snapshot_every=1,
        job_peer_timeout=10,
        job_trainer_args=["--dataset_size", "65536"],
    )
    assert run_site_playbook(inventory, tmp_path).rc == 0
    wait_for(lambda: 2 in epochs_of(metrics(STACK, rank0="node3")), 300, "epoch 2 to finish")

    subprocess.run(["docker", "stop", "node1"], check=True, capture_output=True)  # the host's power
    lost = time.time()
    steps: list[tuple[float, int]] = []
    wait_for(lambda: steps.extend(first_steps_after(STACK, HOSTS, lost)) or steps, 240, "training to resume")
    resumed, world = steps[0]
    figure(f"lost host: training resumed {resumed - lost:.1f} s after the loss, world size {world}")
    assert world == 2

    def trained_by_two() -> bool:
        records = metrics(STACK, rank0="node3")
        return any(r["world_size"] == 2 for r in records if r["event"] == "epoch")

    wait_for(trained_by_two, 240, "an epoch trained whole without node1")
    subprocess.run(["docker", "start", "node1"], check=True, capture_output=True)  # power back
    back = time.time()
    wait_for(lambda: any(w == 3 for _, w in first_steps_after(STACK, HOSTS, back)), 300, "node1 to rejoin")
    rejoined = next(t for t, w in first_steps_after(STACK, HOSTS, back) if w == 3)
    figure(f"host back: it trains again {rejoined - back:.1f} s after its container started")

    wait_for(lambda: ranks_complete(STACK, 3), 900, f"{STACK} to complete")
    records = metrics(STACK, rank0="node3")
    assert epochs_of(records) == list(range(20)), "an epoch was counted twice or lost"
    assert {r["world_size"] for r in records if r["event"] == "epoch"} >= {2, 3}
    summary = [r for r in records if r["event"] == "summary"][-1]
    assert summary["world_size"] == 3
