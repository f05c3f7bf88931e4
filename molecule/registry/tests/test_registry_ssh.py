"""Over SSH as a sudo user, from a real registry with TLS and basic auth; then the image streamed
from the controller over the same SSH connections."""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness import (
    controller,
    first_converge_log,
    image_id,
    metrics,
    node,
    png_size,
    results_of,
    run_playbook,
    stack_tasks,
)

VARS = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())["provisioner"]["inventory"][
    "group_vars"
]["all"]
REGISTRY = VARS["image_registry_url"]
PASSWORD = VARS["image_registry_password"]
CA = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "registry" / "ca.crt"
NODES = ("node0", "node1")


def test_the_job_ran_on_both_nodes_from_the_image_the_registry_served():
    tasks = stack_tasks("ddp")
    for service in ("ddp_node0", "ddp_node1"):
        assert len(tasks[service]) == 1 and tasks[service][0]["CurrentState"].startswith("Complete")
    records = metrics("ddp")
    assert {r["world_size"] for r in records if r["event"] == "epoch"} == {2}
    for name in NODES:
        digests = node(name).check_output(
            f"docker image inspect --format '{{{{json .RepoDigests}}}}' {VARS['image_name']}"
        )
        assert any(d.startswith(f"{REGISTRY}/torchswarm/trainer@sha256:") for d in json.loads(digests)), (
            digests
        )


def test_over_ssh_the_wait_printed_each_epoch_and_the_results_came_back_with_plots():
    text = first_converge_log()
    for n in range(1, 5):
        assert re.search(rf"ddp: epoch {n}/4, loss [0-9.e+-]+, \d+ samples/s, world size 2", text), n
    run = results_of("ddp")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "complete" and summary["metrics"]["epochs_trained"] == [0, 1, 2, 3]
    assert sorted(p.name for p in (run / "logs").iterdir()) == ["ddp_node0.log", "ddp_node1.log"]
    assert png_size(run / "loss.png") == (800, 450)
    for path in run.rglob("*"):
        assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path


def test_ansible_reached_every_node_over_ssh_as_deploy_and_became_root():
    text = first_converge_log()
    assert "ESTABLISH SSH CONNECTION FOR USER: deploy" in text
    assert re.search(r"sudo -H -S -n\s+-u root", text), "no become through sudo"
    assert "ESTABLISH DOCKER CONNECTION" not in text


def test_the_registry_holds_the_pushed_tag_and_refuses_anyone_without_the_password():
    context = ssl.create_default_context(cafile=str(CA))
    url = f"https://{REGISTRY}/v2/torchswarm/trainer/tags/list"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, context=context, timeout=10)
    assert refused.value.code == 401
    basic = base64.b64encode(f"{VARS['image_registry_username']}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        assert json.load(answer)["tags"] == ["registry"]


def test_the_password_is_in_no_output_or_log_and_not_on_the_controllers_disk():
    text = first_converge_log()
    assert "TASK [torchswarm.ddp.image : Push the controller's image to the registry]" in text
    assert "Using module file" in text, "the converge did not run at -vvv"
    assert PASSWORD not in text
    basic = base64.b64encode(f"{VARS['image_registry_username']}:{PASSWORD}".encode()).decode()
    controller_config = Path.home() / ".docker" / "config.json"
    if controller_config.exists():
        assert basic not in controller_config.read_text() and PASSWORD not in controller_config.read_text()
    # Each node keeps its login in root's Docker config, as docker login does (README, Security).
    for name in NODES:
        auths = json.loads(node(name).check_output("cat /root/.docker/config.json"))["auths"]
        assert auths[REGISTRY]["auth"] == basic


def test_the_image_streams_from_the_controller_over_ssh_node0_serving_node1(inventory, tmp_path):
    inventory["all"]["vars"].update(image_source="controller", image_name="torchswarm/trainer:latest")
    run = run_playbook("converge-image.yml", inventory, tmp_path)
    assert run.rc == 0
    # A chain in the play's host order (the order the hosts were grouped in).
    chain = re.search(r"round 1 of 1: (node[01]) <- localhost, (node[01]) <- \1\b", run.output)
    assert chain and sorted(chain.groups()) == ["node0", "node1"], "no chain of the two nodes"
    want = image_id(controller(), "torchswarm/trainer:latest")
    assert [image_id(node(n), "torchswarm/trainer:latest") for n in NODES] == [want, want]
    # The registry gave the nodes this image under its own name: every layer was there already,
    # and only the archive's config and manifest travelled.
    inspect = "docker image inspect -f '{{json .RootFS.Layers}}' torchswarm/trainer:latest"
    layers = len(json.loads(controller().check_output(inspect)))
    assert run.streamed() == {"node0": (layers, layers), "node1": (layers, layers)}, run.streamed()
    again = run_playbook("converge-image.yml", inventory, tmp_path)
    assert again.rc == 0 and "round 1 of" not in again.output
