from __future__ import annotations

import pytest

from torchswarm.netif import choose_interface, configure_socket_ifname

SWARM_TASK = [("lo", "127.0.0.1"), ("eth0", "172.18.0.3"), ("eth1", "10.42.0.7")]


@pytest.mark.parametrize(
    ("subnet", "addresses", "expected"),
    [
        ("10.42.0.0/24", SWARM_TASK, "eth1"),  # the overlay is not eth0 here
        ("10.42.0.0/24", list(reversed(SWARM_TASK)), "eth1"),
        ("172.18.0.0/16", SWARM_TASK, "eth0"),
        ("10.42.0.0/16", [("eth0", "10.42.3.9")], "eth0"),
        ("10.42.0.5/24", [("eth0", "10.42.0.9")], "eth0"),  # host bits in the subnet are fine
        ("10.43.0.0/24", SWARM_TASK, None),
        ("10.42.0.0/24", [("eth0", "not-an-ip"), ("eth1", "10.42.0.2")], "eth1"),
        ("10.42.0.0/24", [], None),
    ],
)
def test_choose_interface(subnet, addresses, expected):
    assert choose_interface(subnet, addresses) == expected


def test_configure_sets_both_variables():
    env: dict[str, str] = {}
    assert configure_socket_ifname("10.42.0.0/24", env, SWARM_TASK) == "eth1"
    assert env == {"NCCL_SOCKET_IFNAME": "eth1", "GLOO_SOCKET_IFNAME": "eth1"}


@pytest.mark.parametrize("var", ["NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"])
def test_a_user_setting_wins(var):
    env = {var: "ib0"}
    assert configure_socket_ifname("10.42.0.0/24", env, SWARM_TASK) is None
    assert env == {var: "ib0"}


def test_no_subnet_changes_nothing():
    env: dict[str, str] = {}
    assert configure_socket_ifname(None, env, SWARM_TASK) is None
    assert env == {}


def test_a_subnet_no_interface_holds_is_an_error_listing_interfaces():
    with pytest.raises(
        ValueError, match=r"no network interface has an address in 10\.43\.0\.0/24.*eth1=10\.42\.0\.7"
    ):
        configure_socket_ifname("10.43.0.0/24", {}, SWARM_TASK)


def test_this_machine_has_a_loopback_address():
    from torchswarm.netif import ipv4_addresses

    assert ("lo", "127.0.0.1") in ipv4_addresses()
