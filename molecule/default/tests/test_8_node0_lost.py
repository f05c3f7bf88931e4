"""Node 0 dies mid-training with three managers: node 0 is the first manager, node rank 0 (the
torchrun master) and perhaps the host of the rendezvous service. The swarm keeps its quorum, moves
the rendezvous service, the others re-form and finish; status.yml works through another manager
and shows the lost rank. Runs last: node0 stays stopped (node2 is gone since test_6)."""

from __future__ import annotations

import re
import time

from harness import (
    MANAGER,
    epochs_of,
    figure,
    first_steps_after,
    metrics,
    node,
    power_off,
    ranks_complete,
    run_playbook,
    run_site_playbook,
    wait_for,
)

STACK = "lose0"
HOSTS = ("node1", "node3")


def test_node0_lost_with_three_managers_the_job_finishes_and_status_says_so(inventory, tmp_path):
    inventory["managers"]["hosts"] = {"node0": {"job_node_rank": 0}, "node1": {"job_node_rank": 1}}
    inventory["managers"]["hosts"]["node3"] = {"job_node_rank": 2}
    inventory["workers"]["hosts"] = {"node2": {"swarm_node_state": "absent"}}
    inventory["all"]["vars"].update(
        job_name=STACK,
        job_wait=False,
        job_epochs=14,
        job_snapshot_every=1,
        job_peer_timeout=10,
        job_trainer_args=["--dataset_size", "32768"],
    )
    assert run_site_playbook(inventory, tmp_path).rc == 0
    wait_for(lambda: 2 in epochs_of(metrics(STACK, rank0="node1")), 300, "epoch 2 to finish")
    store_host = node("node0").check_output(
        f"docker service ps {STACK}_rendezvous --filter desired-state=running --format '{{{{.Node}}}}'"
    )

    power_off("node0")
    lost = time.time()
    MANAGER["name"] = "node1"
    steps: list[tuple[float, int]] = []
    wait_for(lambda: steps.extend(first_steps_after(STACK, HOSTS, lost)) or steps, 300, "training to resume")
    resumed, world = steps[0]
    figure(
        f"node 0 lost (rendezvous service on {store_host}): training resumed {resumed - lost:.1f} s "
        f"after the loss, world size {world}"
    )
    assert world == 2

    status = run_playbook("../../playbooks/status.yml", inventory, tmp_path)
    assert status.rc == 0
    assert re.search(
        rf"job {STACK}: (recovering|complete), \d of 3 hosts training, lost: {STACK}_node0", status.output
    )
    assert "node down: rank lost" in status.output

    wait_for(lambda: ranks_complete(STACK, 3, lost=("node0",)), 420, f"{STACK} to complete")
    records = metrics(STACK, rank0="node1")
    assert epochs_of(records) == list(range(14)), "an epoch was counted twice or lost"
    assert [r for r in records if r["event"] == "summary"][-1]["world_size"] == 2
