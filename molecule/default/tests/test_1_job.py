"""After converge and the idempotent re-run: the guide's job finished once, on three nodes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from harness import (
    controller,
    epochs_of,
    first_converge_log,
    image_id,
    metrics,
    node,
    png_size,
    results_of,
    run_playbook,
    run_site_playbook,
    stack_tasks,
    task_ids,
)

NODES = ("node0", "node1", "node2")


def test_the_image_went_out_along_a_chain_each_node_passing_it_on_and_every_id_matches():
    text = re.sub(r"\s+", " ", first_converge_log())  # long messages are wrapped
    # One round: the controller sends once, to the chain's head; each node passes it on to the
    # next. The play's host order (which the chain follows) is the order the hosts were grouped in.
    chain = re.search(r"round 1 of 1: (node\d) <- localhost, (node\d) <- \1, (node\d) <- \2\b", text)
    assert chain, "no chain of the three nodes from the controller"
    head, middle, tail = chain.groups()
    assert sorted(chain.groups()) == list(NODES)
    for name, sender, after in ((head, "localhost", middle), (middle, head, tail)):
        said = rf"ok: \[{name}\] .{{0,300}}? from {sender} in .{{0,200}}? passed on to {after} as it arrived"
        assert re.search(said, text), f"{name} did not say that it passed the image on to {after}"
    want = image_id(controller(), "torchswarm/trainer:latest")
    for name in NODES:
        assert image_id(node(name), "torchswarm/trainer:latest") == want
        assert ":29600 " not in node(name).check_output("ss -ltn"), f"{name} still listens for an image"


def test_the_wait_printed_every_epoch_with_the_time_left_and_no_retries():
    text = first_converge_log()
    # The first line says how far the start has got when the wait first looks (ranks' tasks start
    # one by one: 2 of 3 up is as right as 3 of 3); "training" only once rank 0 trained a step.
    assert re.search(r"ddp: job running: ([123] of 3 hosts up|3 ranks starting)", text)
    assert text.index("ddp: training at world size 3") < text.index("ddp: epoch 1/10")
    for n in range(1, 11):
        pattern = (
            rf"ddp: epoch {n}/10, loss [0-9.e+-]+, \d+ samples/s, world size 3, [0-9]+ (s|min [0-9]+ s) in"
        )
        assert re.search(pattern, text), f"no progress line for epoch {n}"
    assert re.search(r"ddp: epoch 9/10, .* about \d+ s left", text), "no estimate of the time left"
    assert "ddp: training finished: 10 epochs, final loss" in text
    assert not re.search(r"FAILED - RETRYING: .*Wait for the job", text)


def test_the_results_on_the_controller_hold_the_run_its_logs_and_readable_plots():
    run = results_of("ddp")
    assert f"results: {run}" in first_converge_log()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "complete" and summary["world_size"] == 3
    assert summary["metrics"]["epochs_trained"] == list(range(10))
    assert [r["exit_code"] for r in summary["ranks"]] == [0, 0, 0]
    assert epochs_of([json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]) == list(
        range(10)
    )
    logs = sorted(p.name for p in (run / "logs").iterdir())
    assert logs == ["ddp_node0.log", "ddp_node1.log", "ddp_node2.log"]
    assert "torchswarm: first step trained" in (run / "logs" / "ddp_node0.log").read_text()
    stack = json.loads((run / "stack.json").read_text())
    assert sorted(stack["services"]) == ["node0", "node1", "node2", "rendezvous"]
    for name in ("loss.png", "throughput.png"):
        assert png_size(run / name) == (800, 450)
    # The trained model came back from rank 0's node, the bytes that node holds.
    output = summary["output"]
    assert [f["path"] for f in output["files"]] == ["model.pt"] and output["node"] == "node0"
    digest = hashlib.sha256((run / "output" / "model.pt").read_bytes()).hexdigest()
    assert output["files"][0]["sha256"] == digest
    assert node("node0").check_output(f"sha256sum {output['source']}/model.pt").split()[0] == digest


def files_in(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_results_playbook_writes_the_same_results_from_the_managers_logs(inventory, tmp_path):
    """The wait saved the trainer's metrics file; results.yml reads rank 0's log: the same files."""
    kept = results_of("ddp")
    waited = files_in(kept)

    again = run_playbook("results.yml", inventory, tmp_path)

    assert again.rc == 0
    again.assert_unchanged("node0")
    shutil.rmtree(kept)

    run = run_playbook("results.yml", inventory, tmp_path)

    assert run.rc == 0 and f"results: {kept}" in run.output
    summary = json.loads((kept / "summary.json").read_text())
    assert summary["state"] == "complete" and summary["metrics"]["epochs_trained"] == list(range(10))
    rewritten = files_in(kept)
    # All but the output, which only the waited run brings back from the node.
    assert set(rewritten) == {p for p in waited if p.parts[0] != "output"}
    for name in ("metrics.jsonl", "loss.png", "throughput.png"):
        assert rewritten[Path(name)] == waited[Path(name)], f"{name} differs"
    assert {**json.loads(rewritten[Path("summary.json")]), "output": None} == {
        **json.loads(waited[Path("summary.json")]),
        "output": None,
    }


def test_every_service_ran_one_task_to_completion_and_the_rerun_restarted_none():
    tasks = stack_tasks("ddp")
    assert sorted(tasks) == ["ddp_node0", "ddp_node1", "ddp_node2", "ddp_rendezvous"]
    store = tasks.pop("ddp_rendezvous")
    assert len(store) == 1 and store[0]["CurrentState"].startswith("Running"), store
    for service, history in tasks.items():
        assert len(history) == 1, f"{service} was restarted: {history}"
        assert history[0]["CurrentState"].startswith("Complete"), history[0]


def test_the_metrics_say_world_size_3_and_every_epoch_ran_once():
    records = metrics("ddp")
    assert epochs_of(records) == list(range(10))
    assert {r["world_size"] for r in records if r["event"] == "epoch"} == {3}
    summaries = [r for r in records if r["event"] == "summary"]
    assert len(summaries) == 1
    assert summaries[0]["epochs"] == 10 and summaries[0]["world_size"] == 3


def test_the_final_snapshot_is_on_node0():
    # The newest two of the guide's 10 epochs, every 2: epoch 8's and the final one.
    volume = "/var/lib/docker/volumes/ddp-snapshots/_data"
    kept = node("node0").check_output(f"cd {volume} && ls snapshot-*.pt").split()
    assert kept == ["snapshot-000008-00000000.pt", "snapshot-000010-00000000.pt"]
    assert node("node0").file(f"{volume}/{kept[-1]}").size > 0


def test_services_are_pinned_with_dns_round_robin_and_a_sized_shm():
    manager = node("node0")
    for rank in range(3):
        spec = json.loads(manager.check_output(f"docker service inspect ddp_node{rank}"))[0]["Spec"]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == [f"node.hostname == node{rank}"]
        assert spec["EndpointSpec"]["Mode"] == "dnsrr"
        args = spec["TaskTemplate"]["ContainerSpec"]["Args"]
        assert f"--node_rank={rank}" in args and "--nnodes=3" in args and "--master_addr=node0" in args
        shm = [m for m in spec["TaskTemplate"]["ContainerSpec"]["Mounts"] if m["Target"] == "/dev/shm"]
        assert shm and shm[0]["Type"] == "tmpfs" and shm[0]["TmpfsOptions"]["SizeBytes"] == 1024**3


def test_the_stack_file_on_the_manager_is_private():
    stack_file = node("node0").file("/var/lib/torchswarm/stacks/ddp.yml")
    assert stack_file.mode == 0o600
    assert json.loads(stack_file.content_string)["services"]["node0"]["image"] == "torchswarm/trainer:latest"


def test_a_check_run_of_the_converged_site_reports_no_change_and_touches_nothing(inventory, tmp_path):
    before = task_ids("ddp")

    run = run_site_playbook(inventory, tmp_path, "--check", "--diff")

    assert run.rc == 0
    run.assert_unchanged(*NODES)
    assert "job ddp: nothing to deploy, the running stack is as rendered" in run.output
    assert task_ids("ddp") == before


def test_the_modules_check_apply_again_and_check_again_against_the_real_swarm(inventory, tmp_path):
    run = run_playbook("check-apply.yml", inventory, tmp_path)

    assert run.rc == 0
    assert run.output.count("All assertions passed") == 2
    # Removed: its services are gone (their tasks take a moment longer to leave the task list).
    namespace = "label=com.docker.stack.namespace=checkapply"
    assert node("node0").check_output(f"docker service ls --quiet --filter {namespace}") == ""
