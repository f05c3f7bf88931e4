"""Bad inventories stop the run before any host changes, with the host and variable named.

Every case also lists the bare spare node (node3) as a worker: had validation let the run go
on, node3 would have had Docker installed, so "node3 still has no Docker" proves nothing ran.
"""

from __future__ import annotations

import pytest

from harness import container, node, run_cluster_playbook, swarm_nodes


def with_spare(inventory: dict, **spare_vars) -> dict:
    inventory["workers"]["hosts"]["node3"] = dict(spare_vars)
    return inventory


def set_host_var(inventory: dict, host: str, key: str, value) -> dict:
    for group in ("managers", "workers"):
        if host in inventory.get(group, {}).get("hosts", {}):
            inventory[group]["hosts"][host][key] = value
    return inventory


def unknown_choice(inv):
    return set_host_var(inv, "node1", "swarm_node_state", "gone")


def wrong_type(inv):
    return set_host_var(inv, "node2", "network_mtu", "jumbo")


def in_both_groups(inv):
    inv["managers"]["hosts"]["node1"] = {}
    return inv


def bad_address(inv):
    return set_host_var(inv, "node2", "swarm_advertise_addr", "10.0.0.300")


def shared_address(inv):
    set_host_var(inv, "node1", "swarm_advertise_addr", "192.0.2.10")
    return set_host_var(inv, "node3", "swarm_advertise_addr", "192.0.2.10")


def no_manager(inv):
    inv["workers"]["hosts"].update(inv.pop("managers")["hosts"])
    return inv


def only_manager_absent(inv):
    return set_host_var(inv, "node0", "swarm_node_state", "absent")


def bad_subnet(inv):
    inv["all"]["vars"]["network_subnet"] = "10.42.0.1/24"
    return inv


def duplicate_hostname(inv):
    # Two inventory entries for the same machine: same hostname, same address.
    inv["workers"]["hosts"]["node3-again"] = {"ansible_host": container("node3")}
    return inv


def daemon_json_typo(inv):
    return set_host_var(inv, "node2", "docker_daemon_options", {"log-drvier": "json-file"})


def daemon_json_open_api(inv):
    return set_host_var(
        inv,
        "node1",
        "docker_daemon_options",
        {"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]},
    )


CASES = [
    (unknown_choice, ["node1", "swarm_node_state", "gone"]),
    (wrong_type, ["node2", "network_mtu"]),
    (in_both_groups, ["host node1", "both the 'managers' and the 'workers' group"]),
    (bad_address, ["host node2", "swarm_advertise_addr '10.0.0.300' is not an IP address"]),
    (shared_address, ["host node3", "swarm_advertise_addr '192.0.2.10' is also the address of node1"]),
    (no_manager, ["'managers' group is empty"]),
    (only_manager_absent, ["every host of 'managers' (node0)", "swarm_node_state 'absent'"]),
    (bad_subnet, ["host node0", "network_subnet '10.42.0.1/24'", "host bits set"]),
    (duplicate_hostname, ["host node3-again", "hostname 'node3'", "also the hostname of node3"]),
    (daemon_json_typo, ["host node2: docker_daemon_options: 'log-drvier' is not a daemon.json key"]),
    (
        daemon_json_open_api,
        ["host node1: docker_daemon_options: hosts entry 'tcp://0.0.0.0:2375'", "without TLS"],
    ),
]


def spare_is_bare() -> bool:
    spare = node("node3")
    return spare.run("dpkg-query -W docker.io").rc != 0 and not spare.exists("dockerd")


@pytest.mark.parametrize(("make_bad", "expected"), CASES, ids=[c[0].__name__ for c in CASES])
def test_bad_inventory_fails_before_any_change(inventory, tmp_path, make_bad, expected):
    assert spare_is_bare(), "node3 must start bare for this check to mean anything"
    swarm_before = {name: n["Version"]["Index"] for name, n in swarm_nodes().items()}

    run = run_cluster_playbook(make_bad(with_spare(inventory)), tmp_path)

    assert run.rc != 0
    for text in expected:
        assert text in run.output
    run.assert_unchanged("node0", "node1", "node2")
    # The validate play (its one read of each host included) stopped the run: no later play began.
    assert "PLAY [Install and configure Docker" not in run.output
    assert spare_is_bare()
    # Node objects' version index moves on any change to a node (role, labels, availability).
    assert {name: n["Version"]["Index"] for name, n in swarm_nodes().items()} == swarm_before


def test_a_good_inventory_passes_validation(inventory, tmp_path):
    """The cases above fail for their own reason: the unchanged inventory runs clean."""
    run = run_cluster_playbook(inventory, tmp_path)
    assert run.rc == 0
    run.assert_unchanged("node0", "node1", "node2")
