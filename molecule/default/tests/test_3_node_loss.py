"""A node's training container dies mid-run: the swarm restarts it, torchrun forms the job again,
and it resumes from the last snapshot; every epoch is counted once."""

from __future__ import annotations

import pytest

from conftest import epochs_of, metrics, node, ranks_complete, run_site_playbook, stack_tasks, wait_for


# Node 0 is the harsher case of test_8 (its whole host lost, with three managers).
@pytest.mark.parametrize("victim", ["node1"], ids=["worker"])
def test_the_job_survives_a_killed_training_container(inventory, tmp_path, victim):
    stack = f"loss-{victim}"
    inventory["all"]["vars"].update(
        job_name=stack,
        job_wait=False,
        job_restart_delay="5s",
        # Long enough (about a minute here) to be killed mid-run; snapshots every 2 epochs.
        job_trainer_args=["--dataset_size", "65536"],
    )
    deployed = run_site_playbook(inventory, tmp_path)
    assert deployed.rc == 0

    wait_for(lambda: 2 in epochs_of(metrics(stack)), 300, "epoch 2 to finish")
    service = f"{stack}_{victim}"
    label = f"label=com.docker.swarm.service.name={service}"
    container = node(victim).check_output(f"docker ps -q --filter {label}")
    assert container, f"no running container for {service} on {victim}"
    node(victim).check_output(f"docker kill {container}")

    try:
        wait_for(lambda: ranks_complete(stack, 3), 600, f"{stack} to complete after the kill")
    except AssertionError:
        print(node("node0").run(f"docker stack ps {stack} --no-trunc").stdout)
        for name in ("node0", "node1", "node2"):
            logs = node("node0").run(f"docker service logs --timestamps {stack}_{name} 2>&1 | tail -40")
            print(logs.stdout)
        raise
    records = metrics(stack)
    assert epochs_of(records) == list(range(10)), "an epoch was counted twice or lost"
    summaries = [r for r in records if r["event"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["world_size"] == 3
    assert summaries[0]["resumed_from"] is not None, "the job started over instead of resuming"
    assert summaries[0]["resumed_from"]["epoch"] >= 2
    assert len(stack_tasks(stack)[service]) > 1, "the killed task was not replaced"
