from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._inventory import (
    check_inventory,
    check_subnet,
    manager_to_talk_to,
    number_settings,
)


def node(hostname: str, addr: str, state: str = "present") -> dict:
    return {"hostname": hostname, "advertise_addr": addr, "state": state}


GOOD_NODES = {
    "m0": node("m0", "10.0.0.10"),
    "w1": node("w1", "10.0.0.11"),
    "w2": node("w2", "10.0.0.12"),
}


def test_a_good_inventory_has_no_errors_and_one_manager_is_warned_about():
    report = check_inventory(["m0"], ["w1", "w2"], GOOD_NODES, "10.42.0.0/16")
    assert report.errors == []
    assert len(report.warnings) == 1 and "m0" in report.warnings[0]
    assert "single point of failure" in report.warnings[0]
    three = {**GOOD_NODES, "m1": node("m1", "10.0.0.13"), "m2": node("m2", "10.0.0.14")}
    assert check_inventory(["m0", "m1", "m2"], ["w1", "w2"], three).warnings == []


@pytest.mark.parametrize(
    ("managers", "workers", "nodes", "subnet", "expected"),
    [
        (
            [],
            ["w1"],
            {"w1": node("w1", "10.0.0.11")},
            None,
            "the 'managers' group is empty: at least one host must be a swarm manager",
        ),
        (
            ["m0"],
            ["m0", "w1"],
            GOOD_NODES,
            None,
            "host m0: it is in both the 'managers' and the 'workers' group; a node has one role, keep it in "
            "one group",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10", "absent"), "w1": node("w1", "10.0.0.11")},
            None,
            "every host of 'managers' (m0) has swarm_node_state 'absent'; the swarm needs a manager "
            "that stays",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": {**node("w1", "10.0.0.11"), "reachable": False}},
            None,
            "host w1: it does not answer (unreachable); bring it back, or set swarm_node_state: absent "
            "for it to be removed from the swarm through a manager without reaching it",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("same", "10.0.0.10"), "w1": node("same", "10.0.0.11")},
            None,
            "host w1: its hostname 'same' (ansible_facts.nodename) is also the hostname of m0; swarm "
            "placement by node.hostname needs unique hostnames",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": node("", "10.0.0.11")},
            None,
            "host w1: its hostname (ansible_facts.nodename) is empty; placement constraints need it",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": node("w1", "10.0.0.300")},
            None,
            "host w1: swarm_advertise_addr '10.0.0.300' is not an IP address",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": node("w1", "eth0")},
            None,
            "host w1: swarm_advertise_addr 'eth0' is not an IP address",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": node("w1", "")},
            None,
            "host w1: swarm_advertise_addr is unset and the host has no default IPv4 address; set "
            "swarm_advertise_addr to the address other nodes reach it on",
        ),
        (
            ["m0"],
            ["w1"],
            {"m0": node("m0", "10.0.0.10"), "w1": node("w1", "10.0.0.10")},
            None,
            "host w1: swarm_advertise_addr '10.0.0.10' is also the address of m0",
        ),
        (
            ["m0"],
            ["w1", "w2"],
            GOOD_NODES,
            "10.42.0.1/16",
            "host m0: network_subnet '10.42.0.1/16' is not a network: 10.42.0.1/16 has host bits set",
        ),
        (
            ["m0"],
            ["w1", "w2"],
            GOOD_NODES,
            "10.42.0.0",
            "host m0: network_subnet '10.42.0.0' is not a network: a prefix length is required (for example "
            "10.42.0.0/16)",
        ),
        (
            ["m0"],
            ["w1", "w2"],
            GOOD_NODES,
            "ddp",
            "host m0: network_subnet 'ddp' is not a network: 'ddp' does not appear to be an IPv4 or IPv6 "
            "network",
        ),
    ],
    ids=[
        "no-manager",
        "both-groups",
        "every-manager-absent",
        "present-host-does-not-answer",
        "duplicate-hostname",
        "empty-hostname",
        "address-out-of-range",
        "address-is-an-interface",
        "address-unset",
        "duplicate-address",
        "subnet-host-bits",
        "subnet-no-prefix",
        "subnet-garbage",
    ],
)
def test_each_problem_is_reported_naming_host_and_variable(managers, workers, nodes, subnet, expected):
    report = check_inventory(managers, workers, nodes, subnet)
    assert report.errors == [expected]


def test_ipv6_addresses_are_accepted():
    nodes = {"m0": node("m0", "fd00::10"), "w1": node("w1", "fd00::11")}
    assert check_inventory(["m0"], ["w1"], nodes).errors == []


def test_hosts_marked_absent_are_not_checked_for_clashes():
    # A host on its way out may share a name with its replacement.
    nodes = {
        "m0": node("m0", "10.0.0.10"),
        "old": node("w1", "10.0.0.11", "absent"),
        "new": node("w1", "10.0.0.11"),
    }
    assert check_inventory(["m0"], ["old", "new"], nodes).errors == []


@pytest.mark.parametrize(("count", "warned"), [(1, False), (2, True), (3, False), (4, True)])
def test_an_even_number_of_managers_is_warned_about(count, warned):
    managers = [f"m{i}" for i in range(count)]
    nodes = {m: node(m, f"10.0.0.{10 + i}") for i, m in enumerate(managers)}
    report = check_inventory(managers, [], nodes)
    assert report.errors == []
    assert bool(report.warnings) is warned
    if warned:
        assert "raft quorum" in report.warnings[0]


def test_managers_marked_absent_do_not_count_towards_quorum():
    nodes = {
        "m0": node("m0", "10.0.0.10"),
        "m1": node("m1", "10.0.0.11"),
        "m2": node("m2", "10.0.0.12", "absent"),
    }
    assert check_inventory(["m0", "m1", "m2"], [], nodes).warnings


@pytest.mark.parametrize(
    ("value", "ok"),
    [("10.42.0.0/16", True), ("fd00:42::/64", True), ("10.42.0.0/33", False), ("10.42.0.0", False)],
)
def test_check_subnet(value, ok):
    assert (check_subnet(value) is None) is ok


def training(hostname: str, addr: str, **extra) -> dict:
    return {**node(hostname, addr), "training": True, **extra}


@pytest.mark.parametrize(
    ("nodes", "image", "expected"),
    [
        (
            {"m0": training("m0", "10.0.0.10", node_rank=0), "w1": training("w1", "10.0.0.11", node_rank=0)},
            None,
            "host w1: job_node_rank 0 is also the job_node_rank of m0",
        ),
        (
            {"m0": training("m0", "10.0.0.10", node_rank=0), "w1": training("w1", "10.0.0.11", node_rank=3)},
            None,
            "node_rank has a gap: 2 training nodes need ranks 0..1, and no host has node_rank 1",
        ),
        (
            {"m0": training("m0", "10.0.0.10"), "w1": training("w1", "10.0.0.11", nproc_per_node=0)},
            None,
            "host w1: job_nproc_per_node is 0; it must be at least 1",
        ),
        (
            GOOD_NODES,
            "Not/An Image",
            "host m0: image_name 'Not/An Image' is not a valid image name: it is not "
            "[registry/]name[:tag][@sha256:digest] in lowercase",
        ),
    ],
)
def test_training_nodes_are_checked_before_anything_changes(nodes, image, expected):
    report = check_inventory(["m0"], ["w1"], nodes, None, image)
    assert report.errors == [expected]


def test_hosts_that_do_not_train_or_leave_need_no_rank():
    nodes = {
        "m0": training("m0", "10.0.0.10", node_rank=0),
        "w1": {**training("w1", "10.0.0.11"), "training": False},
        "w2": {**training("w2", "10.0.0.12", node_rank=5), "state": "absent"},
        "w3": training("w3", "10.0.0.13", node_rank=1),
    }
    assert check_inventory(["m0"], ["w1", "w2", "w3"], nodes, None, "trainer:1").errors == []


def test_every_job_option_the_stack_module_checks_is_checked_first():
    job = {
        "job_restart_delay": "10",
        "job_master_addr": "not an address",
        "job_env": {"OK": "1"},
        "job_epochs": 10,
        "job_wait_timeout": 600,  # not a stack option: ignored here
    }
    report = check_inventory(["m0"], ["w1"], GOOD_NODES, None, "trainer:1", job, ["bad-name"])
    assert report.errors == [
        "host m0: job_restart_delay '10' is not a duration such as 10s, 1m30s or 500ms",
        "host m0: job_master_addr 'not an address' is neither an IP address nor a hostname",
        "host m0: job_secrets: 'bad-name' is not an environment variable name",
    ]


def test_job_values_of_the_wrong_type_are_named_and_the_rest_waits_for_them():
    job = {"job_epochs": "ten", "job_network_mode": "bridge", "job_restart_delay": "10"}
    assert check_inventory(["m0"], ["w1"], GOOD_NODES, None, "trainer:1", job).errors == [
        "host m0: argument 'job_epochs' is of type str and we were unable to convert to int: "
        "\"'ten'\" cannot be converted to an int",
        "host m0: value of job_network_mode must be one of: overlay, host, got: bridge",
    ]


def test_each_hosts_job_options_are_typed_and_each_error_is_named_once():
    nodes = {
        **GOOD_NODES,
        "m0": {**GOOD_NODES["m0"], "job": {"epochs": "ten"}},
        "w2": {**GOOD_NODES["w2"], "job": {"epochs": 12, "peer_timeout": "soon"}},
    }
    report = check_inventory(["m0"], ["w1", "w2"], nodes, None, "trainer:1", {"job_epochs": "ten"})
    assert report.errors == [
        "host m0: argument 'job_epochs' is of type str and we were unable to convert to int: "
        "\"'ten'\" cannot be converted to an int",
        "host w2: argument 'job_peer_timeout' is of type str and we were unable to convert to int: "
        "\"'soon'\" cannot be converted to an int",
    ]


def test_job_values_are_checked_as_the_module_takes_them():
    job = {"job_epochs": "0", "job_image": "Bad Image", "job_name": "my job", "job_wait": "later"}
    assert check_inventory(["m0"], ["w1"], GOOD_NODES, None, "trainer:1", job).errors == [
        "host m0: job_image 'Bad Image' is not a valid image name: it is not [registry/]name[:tag]"
        "[@sha256:digest] in lowercase",
        "host m0: job_name 'my job' may hold only letters, digits, '_' and '-'",
        "host m0: job_epochs is 0; it must be at least 1",
    ]


def test_the_script_must_be_among_the_shipped_files():
    ok = check_inventory(
        ["m0"], ["w1"], GOOD_NODES, None, None, {"job_script": "a.py"}, [], ["a.py", "lib/b.py"]
    )
    assert ok.errors == []
    report = check_inventory(["m0"], ["w1"], GOOD_NODES, None, None, {}, [], ["a.py"])
    assert report.errors == [
        "host m0: job_script 'training_code.py' is not among the files of job_script_src (a.py); set "
        "job_script to the one to run"
    ]


def test_daemon_options_are_checked_per_host_before_anything_changes():
    nodes = {
        "m0": {**node("m0", "10.0.0.10"), "daemon_options": {"hosts": ["tcp://0.0.0.0:2375"]}},
        "w1": {**node("w1", "10.0.0.11"), "daemon_options": {"log-drvier": "json-file"}},
    }
    errors = check_inventory(["m0"], ["w1"], nodes).errors
    assert len(errors) == 2, errors
    assert errors[0].startswith(
        "host m0: docker_daemon_options: hosts entry 'tcp://0.0.0.0:2375' opens Docker's API"
    )
    assert errors[1] == "host w1: docker_daemon_options: 'log-drvier' is not a daemon.json key " + (
        "(dockerd would refuse to start)"
    )


def test_a_host_marked_absent_that_does_not_answer_is_gone_not_an_error():
    nodes = {
        **GOOD_NODES,
        "w2": {"hostname": "", "advertise_addr": "", "state": "absent", "reachable": False},
    }
    report = check_inventory(["m0"], ["w1", "w2"], nodes)
    assert report.errors == []
    assert report.gone == ["w2"]
    assert report.manager == "m0"


def test_the_manager_is_the_first_that_stays_and_answers():
    nodes = {
        "m0": {**node("m0", "10.0.0.10", "absent"), "reachable": False},
        "m1": node("m1", "10.0.0.11"),
        "m2": node("m2", "10.0.0.12"),
    }
    report = check_inventory(["m0", "m1", "m2"], [], nodes)
    assert report.errors == []
    assert (report.manager, report.gone) == ("m1", ["m0"])
    assert check_inventory(["m0"], ["w1", "w2"], GOOD_NODES).manager == "m0"


def test_the_playbooks_choose_the_manager_by_the_same_rule_in_inventory_order():
    # As reachable_manager.yml hands them to the swarm_manager filter: state and whether it answered.
    nodes = {
        "m0": {"state": "present", "reachable": False},
        "m1": {"state": "absent", "reachable": True},
        "m2": {"state": "present", "reachable": True},
        "m3": {"state": "present", "reachable": True},
    }
    assert manager_to_talk_to(["m0", "m1", "m2", "m3"], nodes) == "m2"
    assert manager_to_talk_to(["m3", "m2"], nodes) == "m3"
    assert manager_to_talk_to(["m0", "m1"], nodes) == ""


def test_a_host_path_mount_a_training_host_lacks_stops_the_run_naming_host_path_and_variable():
    here = {"exists": True, "directory": True, "readable": True, "writable": True}
    missing = {"exists": False, "directory": False, "readable": False, "writable": False}
    nodes = {
        "m0": {**node("m0", "10.0.0.10"), "paths": {"/srv/data": here}},
        "w1": {**node("w1", "10.0.0.11"), "paths": {"/srv/data": missing}},
        # Not training: not asked, not judged.
        "w2": {**node("w2", "10.0.0.12"), "training": False, "paths": {}},
    }
    job = {"job_mounts": [{"source": "/srv/data", "target": "/data"}]}
    report = check_inventory(["m0"], ["w1", "w2"], nodes, None, "trainer", job)
    assert report.errors == ["host w1: job_mounts[0].source '/srv/data' does not exist"]
    # A bad type is named by the option checks, and the paths wait for it.
    report = check_inventory(["m0"], ["w1"], nodes, None, "trainer", {"job_mounts": "/srv/data"})
    assert (
        len(report.errors) == 1
        and "job_mounts" in report.errors[0]
        and "does not exist" not in report.errors[0]
    )


def test_a_locked_manager_needs_the_unlock_key_and_a_bad_cert_expiry_is_named():
    nodes = {"m": node("m", "10.0.0.1"), "w": node("w", "10.0.0.2")}
    nodes["m"]["swarm_locked"] = True
    report = check_inventory(["m"], ["w"], nodes, swarm_cert_expiry="90d")
    assert report.errors == [
        "host m: its swarm manager is locked (autolock, and Docker restarted there); give swarm_unlock_key"
        " (what `docker swarm unlock-key -q` printed, kept in a vault) for the run to unlock it",
        "host m: swarm_cert_expiry: '90d' is not a duration such as 2160h or 720h30m",
    ]
    nodes["m"]["unlock_key"] = True
    assert check_inventory(["m"], ["w"], nodes, swarm_cert_expiry="720h").errors == []


def test_version_pins_that_apt_would_not_take_are_named_with_the_host():
    nodes = {
        "m0": {
            **node("m0", "10.0.0.10"),
            "pins": {"docker_version": "5:27.3.*", "nvidia_toolkit_version": ""},
        },
        "w1": {**node("w1", "10.0.0.11"), "pins": {"docker_version": "", "nvidia_toolkit_version": "latest"}},
    }
    errors = check_inventory(["m0"], ["w1"], nodes).errors
    assert errors == [
        "host w1: nvidia_toolkit_version: 'latest' is not a package version such as "
        "5:27.3.1-1~debian.12~bookworm, or a prefix of one ending in * such as 5:27.3.*"
    ]


def test_an_engine_at_another_version_than_the_pin_is_warned_about_naming_the_host_and_the_way_out():
    nodes = {
        "m0": {**node("m0", "10.0.0.10"), "pins": {"docker_version": "5:27.3.*"}, "docker_drift": {}},
        "w1": {
            **node("w1", "10.0.0.11"),
            "pins": {"docker_version": "5:27.3.*"},
            "docker_drift": {"docker-ce": "5:26.1.4-1~debian.12~bookworm"},
        },
    }
    report = check_inventory(["m0"], ["w1"], nodes)
    assert report.errors == []
    assert report.warnings[-1] == (
        "host w1: docker-ce 5:26.1.4-1~debian.12~bookworm installed, and docker_version pins 5:27.3.*; "
        "this run leaves it as it is (an upgrade restarts Docker, which would stop the host's ranks). "
        "ansible-playbook maintenance.yml -l w1 -e maintenance_upgrade=true upgrades it while the job "
        "trains on without the host"
    )
    assert not any(w.startswith("host m0") for w in report.warnings)


def test_settings_out_of_their_range_are_refused_naming_the_host_and_the_variable():
    numbers = {
        "network_mtu": 100000,
        "job_wait_timeout": -5,
        "image_relay_port": "70000",
        "job_progress_every": 0,
        "job_data_limit": 14400,
        "image_progress_every": "15",
        "job_straggler_ratio": 0.8,
        "job_straggler_epochs": 0,
    }
    report = check_inventory(
        ["m1"], [], {"m1": {"hostname": "m1", "advertise_addr": "10.0.0.1"}}, numbers=numbers
    )
    assert report.errors == [
        "host m1: image_relay_port is 70000; it must be between 1 and 65535",
        "host m1: job_progress_every is 0; it must be at least 1",
        "host m1: job_straggler_epochs is 0; it must be at least 1",
        "host m1: job_straggler_ratio is 0.8; it must be at least 1",
        "host m1: job_wait_timeout is -5; it must be at least 1",
        "host m1: network_mtu is 100000; it must be between 68 and 65535",
    ]
    fine = {"network_mtu": 0, "job_wait_timeout": 1, "image_relay_port": 29600, "job_straggler_ratio": 1.5}
    assert (
        check_inventory(
            ["m1"], [], {"m1": {"hostname": "m1", "advertise_addr": "10.0.0.1"}}, numbers=fine
        ).errors
        == []
    )


def test_number_settings_are_the_roles_numbers_by_name_and_nothing_else_is_read():
    class Variables(dict):
        def __getitem__(self, name):
            assert name not in ("job_secrets", "image_registry_password"), f"{name} was read"
            return super().__getitem__(name)

    variables = Variables(
        network_mtu=1450,
        job_wait_timeout=60,
        job_straggler_ratio=1.5,
        image_relay_port=29600,
        job_secrets={"API": "s3cret"},
        image_registry_password="pw",
        swarm_port=2377,  # not a role setting this check knows
        job_name="ddp",
        job_cpus=0.5,  # a fraction of a CPU, which no whole-number range may refuse
    )
    assert number_settings(variables) == {
        "network_mtu": 1450,
        "job_wait_timeout": 60,
        "job_straggler_ratio": 1.5,
        "image_relay_port": 29600,
    }
