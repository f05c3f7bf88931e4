"""Bad job input stops site.yml with the host and the variable named, before anything changes."""

from __future__ import annotations

import pytest

from harness import load_probe_image, node, run_site_playbook, stack_tasks, task_ids


def set_host_var(inventory: dict, host: str, **values) -> dict:
    for group in inventory.values():
        if host in group.get("hosts", {}):
            group["hosts"][host].update(values)
    return inventory


def ranks(inventory: dict, **by_host: int) -> dict:
    for host, rank in by_host.items():
        set_host_var(inventory, host, job_node_rank=rank)
    return inventory


def mount_a_path_node2_lacks(inventory: dict) -> dict:
    """A host path on node0's and node1's own disks, not on node2's: each host is asked about its
    own filesystem before anything changes."""
    for host in ("node0", "node1"):
        node(host).run("mkdir -p /srv/local-data")
    inventory["all"]["vars"]["job_mounts"] = [{"source": "/srv/local-data", "target": "/data"}]
    return inventory


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda inv: ranks(inv, node0=0, node1=0, node2=1),
            "host node1: job_node_rank 0 is also the job_node_rank of node0",
        ),
        (lambda inv: set_host_var(inv, "node2", job_nproc_per_node=0), "host node2: job_nproc_per_node is 0"),
        (
            # The image role's image_name, which the job's image defaults to: named as set.
            lambda inv: inv["all"]["vars"].update(image_name="Trainer:latest") or inv,
            "host node0: image_name 'Trainer:latest' is not a valid image name",
        ),
        (
            lambda inv: set_host_var(inv, "node1", job_epochs="ten"),
            "host node1: argument 'job_epochs' is of type str and we were unable to convert to int",
        ),
        (
            mount_a_path_node2_lacks,
            "host node2: job_mounts[0].source '/srv/local-data' does not exist",
        ),
        (
            lambda inv: inv["all"]["vars"].update(swarm_cert_expiry="90d") or inv,
            "host node0: swarm_cert_expiry: '90d' is not a duration",
        ),
    ],
    ids=[
        "duplicate-rank",
        "no-processes",
        "bad-image-name",
        "epochs-not-a-number",
        "missing-host-path",
        "cert-expiry-in-days",
    ],
)
def test_refused_before_any_host_changes(inventory, tmp_path, change, expected):
    before = task_ids("ddp")
    run = run_site_playbook(change(inventory), tmp_path)
    assert run.rc != 0
    assert expected in run.output
    if change is mount_a_path_node2_lacks:
        assert "host node0: job_mounts" not in run.output and "host node1: job_mounts" not in run.output
    run.assert_unchanged("node0", "node1", "node2")
    assert task_ids("ddp") == before


def test_a_node_without_the_image_is_named_before_deploy(inventory, tmp_path):
    load_probe_image("node0")  # node1 and node2 do not have it
    inventory["all"]["vars"]["job_image"] = "torchswarm/probe:latest"
    inventory["all"]["vars"]["job_name"] = "noimage"
    run = run_site_playbook(inventory, tmp_path)
    assert run.rc != 0
    assert "host node1: job_image 'torchswarm/probe:latest' is not on this node's Docker engine" in run.output
    assert "host node2: job_image 'torchswarm/probe:latest' is not on this node's Docker engine" in run.output
    assert stack_tasks("noimage") == {}


def test_settings_out_of_range_and_a_string_for_a_list_are_refused_naming_their_variables(
    inventory, tmp_path
):
    """Each used to pass the validate play: the MTU reached the network play after Docker was
    installed and the image sent, -5 s deployed the job, and "--model gpt" became one argument."""
    inventory["all"]["vars"].update(network_mtu=100000, job_wait_timeout=-5, job_trainer_args="--model gpt")
    before = task_ids("ddp")
    run = run_site_playbook(inventory, tmp_path)
    assert run.rc != 0
    for expected in (
        "host node0: network_mtu is 100000; it must be between 68 and 65535",
        "host node0: job_wait_timeout is -5; it must be at least 1",
        "host node0: job_trainer_args is a string ('--model gpt'); give a list, one item per argument",
    ):
        assert expected in run.output
    run.assert_unchanged("node0", "node1", "node2")
    assert task_ids("ddp") == before
