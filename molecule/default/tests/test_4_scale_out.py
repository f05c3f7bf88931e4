"""A fourth host in the inventory: it joins, the stack is re-rendered for four nodes, and the
job (given more epochs) resumes from its snapshot with world size 4 instead of starting over."""

from __future__ import annotations

import re

from harness import epochs_of, metrics, node, run_site_playbook, stack_tasks, swarm_nodes, task_ids


def node_ranks(stack: str) -> dict[str, str]:
    """Each rank's service and its node rank (the rendezvous service has none)."""
    fmt = '{{.Spec.Name}} {{index .Spec.Labels "io.torchswarm.node-rank"}}'
    services = node("node0").check_output(f"docker stack services --quiet {stack}").split()
    out = node("node0").check_output(f"docker service inspect --format '{fmt}' {' '.join(services)}")
    pairs = [line.split(" ", 1) for line in out.splitlines()]
    return {name: rank for name, rank in pairs if not name.endswith("_rendezvous")}


def test_check_mode_names_the_new_host_the_job_would_grow_to_and_changes_nothing(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {}
    inventory["all"]["vars"]["job_epochs"] = 14
    before = task_ids("ddp")

    run = run_site_playbook(inventory, tmp_path, "--check", "--diff")

    assert run.rc == 0
    assert run.recap["node3"]["changed"] > 0
    assert (
        "hosts where no Docker engine runs yet (node3) are left out here; a run adds them and deploys again"
        in run.output
    )
    assert "deploy stack ddp (3 services)" in run.output  # the new epoch count, on the hosts there
    assert node("node3").run("systemctl is-active docker").stdout.strip() != "active"  # nothing started
    assert task_ids("ddp") == before and "node3" not in swarm_nodes()


def test_a_fourth_node_joins_and_the_job_resumes_with_world_size_4(inventory, tmp_path):
    inventory["workers"]["hosts"]["node3"] = {}
    inventory["all"]["vars"]["job_epochs"] = 14

    run = run_site_playbook(inventory, tmp_path)

    assert run.rc == 0
    # The nodes that hold the image serve the newcomer; the controller sends nothing.
    assert re.search(r"round 1 of 1: node3 <- node[0-2]\b", run.output), "node3 was not served by a node"
    assert "node3" in swarm_nodes()
    assert sorted(stack_tasks("ddp")) == [
        "ddp_node0",
        "ddp_node1",
        "ddp_node2",
        "ddp_node3",
        "ddp_rendezvous",
    ]
    records = metrics("ddp")
    assert epochs_of(records) == list(range(14))
    world = {r["epoch"]: r["world_size"] for r in records if r["event"] == "epoch"}
    assert {world[e] for e in range(10)} == {3} and {world[e] for e in range(10, 14)} == {4}
    summary = [r for r in records if r["event"] == "summary"][-1]
    assert summary["world_size"] == 4 and summary["resumed_from"] == {"epoch": 10, "step": 0}
    assert "world size 4 on 4 nodes" in run.output

    # Ranks follow inventory order: the new host is appended, the others keep theirs.
    ranks = {f"ddp_node{i}": str(i) for i in range(4)}
    assert node_ranks("ddp") == ranks

    again = run_site_playbook(inventory, tmp_path)
    assert again.rc == 0
    again.assert_unchanged("node0", "node1", "node2", "node3")
    assert node_ranks("ddp") == ranks
