"""A training host dies (its node container killed: a power cut) and is marked absent: the re-run removes it
through the manager without reaching it, re-renders the job for the others, and the job resumes
from the snapshot. Runs after test_5 (ddp on node3, node0, node1, node2 as ranks 0-3)."""

from __future__ import annotations

import time

from harness import epochs_of, figure, metrics, power_off, run_site_playbook, swarm_nodes, wait_for


def test_a_dead_training_host_marked_absent_is_removed_and_the_job_resumes(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {"job_node_rank": 0}
    for rank, host in enumerate(("node0", "node1", "node2"), start=1):
        group = "managers" if host == "node0" else "workers"
        inventory[group]["hosts"][host] = {"job_node_rank": rank}
    inventory["all"]["vars"].update(
        job_epochs=22, job_wait=False, job_trainer_args=["--dataset_size", "32768"]
    )
    assert run_site_playbook(inventory, tmp_path).rc == 0
    wait_for(lambda: 17 in epochs_of(metrics("ddp", rank0="node3")), 300, "epoch 17 to finish")

    power_off("node2")
    lost = time.monotonic()
    inventory["workers"]["hosts"]["node2"] = {"swarm_node_state": "absent"}
    inventory["all"]["vars"]["job_wait"] = True

    run = run_site_playbook(inventory, tmp_path)

    figure(f"dead host: site.yml finished the job {time.monotonic() - lost:.0f} s after the loss")
    assert run.rc == 0
    assert "node2" not in swarm_nodes()
    records = metrics("ddp", rank0="node3")
    assert epochs_of(records) == list(range(22)), "an epoch was counted twice or lost"
    summary = [r for r in records if r["event"] == "summary"][-1]
    assert summary["world_size"] == 3 and summary["resumed_from"]["epoch"] >= 16
    assert "world size 3 on 3 nodes" in run.output
