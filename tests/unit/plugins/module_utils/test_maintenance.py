"""Whether a host may leave for maintenance: node lists as `docker node inspect` gives them, jobs
as training_job_info returns them."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.filter import maintenance as maintenance_filter
from ansible_collections.torchswarm.ddp.plugins.module_utils import _maintenance as maintenance


def node(hostname: str, role: str = "worker", reachable: bool = True) -> dict:
    entry = {"Description": {"Hostname": hostname}, "Spec": {"Role": role, "Availability": "active"}}
    if role == "manager":
        entry["ManagerStatus"] = {"Reachability": "reachable" if reachable else "unreachable"}
    return entry


def job(state: str = "running", hosts=("node0", "node1", "node2"), out: tuple[str, ...] = ()) -> dict:
    """A job whose ranks run on ``hosts`` but those ``out`` (drained: their tasks pending)."""
    rows = [
        {
            "service": f"ddp_{h}",
            "host": h,
            "node": h,
            "lost": False,
            "state": "pending" if h in out else "running",
        }
        for h in hosts
    ]
    return {"state": state, "services": rows, "training_hosts": len(hosts) - len(out)}


ELASTIC = ["TORCHSWARM_MIN_NODES=2", "TORCHSWARM_IMAGE_ID=sha256:0a1b", "JOB_TOKEN=s=cr=t"]
ONE_MANAGER = [node("node0", "manager"), node("node1"), node("node2")]


def test_a_worker_of_an_elastic_job_may_leave_and_the_job_grows_back_to_its_world():
    v = maintenance.verdict("node1", "node1", ONE_MANAGER, job(), ELASTIC)
    assert v == {
        "refusals": [],
        "stops_job": False,
        "world": 3,
        "service": "ddp_node1",
        "image": "sha256:0a1b",
    }


def test_a_host_in_no_running_job_leaves_with_nothing_to_wait_for():
    for state in ("complete", "absent", "failed"):
        v = maintenance.verdict("node1", "node1", ONE_MANAGER, job(state), [])
        assert v == {"refusals": [], "stops_job": False, "world": 0, "service": "", "image": ""}


def test_the_only_manager_is_refused_by_name():
    [reason] = maintenance.verdict("node0", "node0", ONE_MANAGER, job(), ELASTIC)["refusals"]
    assert reason.startswith("host node0 is the swarm's only manager")


@pytest.mark.parametrize(
    ("reachable", "refused"),
    [((True, True, True), False), ((True, True, False), True), ((True, False, False), True)],
)
def test_a_manager_may_leave_only_while_the_others_keep_quorum(reachable, refused):
    nodes = [node(f"node{i}", "manager", r) for i, r in enumerate(reachable)]
    v = maintenance.verdict("node0", "node0", nodes, job(state="absent"), [])
    assert bool(v["refusals"]) is refused
    if refused:
        assert "fewer than the 2 that keep the swarm's quorum" in v["refusals"][0]


def test_a_job_left_with_fewer_than_job_min_nodes_is_refused_unless_stopping_it_is_intended():
    two_training = job(out=("node2",))  # one host is out already
    [reason] = maintenance.verdict("node1", "node1", ONE_MANAGER, two_training, ELASTIC)["refusals"]
    assert reason == (
        "host node1: job ddp would train on 1 host(s) without it, fewer than its job_min_nodes (2);"
        " set maintenance_stop_job: true to stop the job on purpose"
    )
    v = maintenance.verdict("node1", "node1", ONE_MANAGER, two_training, ELASTIC, stop_job=True)
    assert v == {
        "refusals": [],
        "stops_job": True,
        "world": 0,
        "service": "ddp_node1",
        "image": "sha256:0a1b",
    }


def test_a_job_that_is_not_elastic_is_refused():
    [reason] = maintenance.verdict("node1", "node1", ONE_MANAGER, job(), ["JOB_TOKEN=x"])["refusals"]
    assert "which is not elastic" in reason and reason.startswith("host node1 trains in job ddp")


def test_stopping_the_job_does_not_lift_a_refusal_of_the_swarm():
    nodes = [node("node0", "manager"), node("node1")]
    v = maintenance.verdict("node0", "node0", nodes, job(hosts=("node0", "node1")), [], stop_job=True)
    assert v["refusals"][0].startswith("host node0 is the swarm's only manager") and not v["stops_job"]


def test_a_host_drained_by_an_earlier_run_may_leave_again_and_the_job_grows_back_to_all_its_ranks():
    v = maintenance.verdict("node1", "node1", ONE_MANAGER, job(out=("node1",)), ELASTIC)
    assert v["refusals"] == [] and v["world"] == 3


def test_a_host_that_is_no_swarm_node_is_refused():
    [reason] = maintenance.verdict("gpu7", "gpu7.lab", ONE_MANAGER, job(), ELASTIC)["refusals"]
    assert reason.startswith("host gpu7: no swarm node has the hostname 'gpu7.lab'")


def test_an_environment_keeps_the_equals_signs_in_its_values():
    assert maintenance.environment(ELASTIC)["JOB_TOKEN"] == "s=cr=t"
    assert maintenance.environment(None) == {}


def test_the_filter_reads_stop_job_given_as_text_on_the_command_line():
    two_training = job(out=("node2",))
    for text, stops in (("true", True), ("false", False), ("no", False)):
        v = maintenance_filter.maintenance_verdict("node1", "node1", ONE_MANAGER, two_training, ELASTIC, text)
        assert v["stops_job"] is stops and bool(v["refusals"]) is not stops


def test_an_upgrade_without_a_version_to_install_is_refused_and_does_not_stop_the_job():
    pins = {"docker_version": "", "nvidia_toolkit_version": ""}
    v = maintenance_filter.maintenance_verdict(
        "node1", "node1", ONE_MANAGER, job(hosts=("node0", "node1")), ELASTIC, "true", pins
    )
    assert v["refusals"][0].startswith("host node1: maintenance_upgrade installs docker_version or")
    assert not v["stops_job"]
    pinned = maintenance.verdict(
        "node1", "node1", ONE_MANAGER, job(), ELASTIC, False, {"docker_version": "5:27.*"}
    )
    assert pinned["refusals"] == []
