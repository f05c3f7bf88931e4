"""The job reserves one GPU per process; the swarm hands each task its node's GPUs, and the
(stand-in) runtime gets them. A job asking for more GPUs than a node has is refused."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from harness import (
    controller,
    epochs_of,
    first_converge_log,
    image_id,
    metrics,
    newest_ansible_core,
    node,
    run_site_playbook,
    stack_tasks,
    standin_gpus,
    task_ids,
)

STANDIN_GPUS = standin_gpus(Path(__file__).resolve().parents[1])


def task_container(name: str) -> dict:
    host = node(name)
    ids = host.check_output(
        f"docker ps --all --quiet --filter label=com.docker.swarm.service.name=ddp_{name}"
    )
    return json.loads(host.check_output(f"docker inspect {ids.split()[0]}"))[0]


def test_the_image_went_out_in_log2_rounds_node0_serving_in_the_second_and_every_id_matches():
    """image_fanout: rounds (molecule.yml), across Debian 13's engine and Debian 12's."""
    text = first_converge_log()
    # The rounds follow the play's host order (the order the hosts were grouped in).
    first = re.search(r"round 1 of 2: (node\d) <- localhost\b", text)
    assert first, "no first round from the controller alone"
    second = re.search(
        r"round 2 of 2: (node\d) <- (node\d|localhost), (node\d) <- (node\d|localhost)\b", text
    )
    assert second, "no second round with two receivers"
    served = dict(zip(second.groups()[::2], second.groups()[1::2], strict=True))
    assert sorted([first[1], *served]) == ["node0", "node1", "node2"]
    assert sorted(served.values()) == sorted([first[1], "localhost"]), (
        f"the first receiver did not serve: {served}"
    )
    assert "passed on to" not in text  # nobody forwards in rounds
    want = image_id(controller(), "torchswarm/trainer:latest")
    assert [image_id(node(n), "torchswarm/trainer:latest") for n in ("node0", "node1", "node2")] == [want] * 3


def test_site_yml_ran_on_the_newest_ansible_core_claimed_and_it_warned_of_no_deprecation():
    """make molecule-gpu runs from .venv-newest: this scenario's whole site.yml, first converge and
    idempotent re-run, is the newest ansible-core's (requirements-newest.txt). Its deprecations
    (top-level facts, a copied lazy container) are a later release's errors."""
    ran = subprocess.run(["ansible-playbook", "--version"], capture_output=True, text=True, check=True)
    assert f"[core {newest_ansible_core()}]" in ran.stdout.splitlines()[0], ran.stdout
    lines = first_converge_log().splitlines()
    warned = [i for i, line in enumerate(lines) if "[DEPRECATION WARNING]" in line]
    assert not warned, "\n--\n".join("\n".join(lines[max(i - 2, 0) : i + 8]) for i in warned[:3])


def test_processes_default_to_one_per_gpu_and_the_job_completes_with_world_size_5():
    tasks = stack_tasks("ddp")
    tasks.pop("ddp_rendezvous")  # the elastic job's store, running on the managers
    assert all(h[0]["CurrentState"].startswith("Complete") for h in tasks.values()), tasks
    records = metrics("ddp")
    assert epochs_of(records) == list(range(4))
    assert {r["world_size"] for r in records if r["event"] == "epoch"} == {5}  # 2 + 2 + 1
    args = {n: task_container(n)["Args"] for n in ("node0", "node1", "node2")}
    assert "--nproc_per_node=2" in args["node0"] and "--nproc_per_node=2" in args["node1"]
    assert "--nproc_per_node=1" in args["node2"]


def test_each_gpu_task_gets_its_nodes_gpus_from_the_swarm_and_the_runtime_sees_them():
    for name, uuids in STANDIN_GPUS.items():
        container = task_container(name)
        env = dict(e.split("=", 1) for e in container["Config"]["Env"])
        assert sorted(env["DOCKER_RESOURCE_GPU"].split(",")) == sorted(uuids), name
        log = node(name).file("/var/log/nvidia-runtime-standin.log").content_string.splitlines()
        seen = [json.loads(line) for line in log if container["Id"] in line]
        assert seen, f"the stand-in runtime on {name} never created {container['Id']}"
        assert sorted(seen[-1]["visible"].split(",")) == sorted(uuids)


def test_gpu_tasks_ran_on_the_overlay_on_debian_13s_engine():
    for name in STANDIN_GPUS:
        assert node(name).check_output("cut -d. -f1 /etc/debian_version") == "13"
        engine = node(name).check_output("docker version --format '{{.Server.Version}}'")
        assert int(engine.split(".")[0]) >= 26, engine
        assert "ddp-net" in task_container(name)["NetworkSettings"]["Networks"], name


def test_the_cpu_nodes_task_reserves_no_gpu():
    env = dict(e.split("=", 1) for e in task_container("node2")["Config"]["Env"])
    assert "DOCKER_RESOURCE_GPU" not in env
    assert not node("node2").file("/var/log/nvidia-runtime-standin.log").exists


def test_more_processes_than_gpus_is_refused_before_deploy(inventory, tmp_path):
    before = task_ids("ddp")
    inventory["workers"]["hosts"]["node1"]["job_nproc_per_node"] = 3
    inventory["all"]["vars"]["job_epochs"] = 6

    run = run_site_playbook(inventory, tmp_path)

    assert run.rc != 0
    assert (
        "host node1: nproc_per_node 3 needs 3 GPUs (one per process), but its swarm node advertises 2"
        in run.output
    )
    assert "nothing was deployed" in run.output
    assert task_ids("ddp") == before
