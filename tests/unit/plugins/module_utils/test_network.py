from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._network import (
    recreate_reasons,
    services_using,
    wanted_driver_options,
)


def overlay(subnet="10.42.0.0/24", options=None, attachable=True, driver="overlay", scope="swarm"):
    return {
        "Id": "net1",
        "Name": "ddp-net",
        "Driver": driver,
        "Scope": scope,
        "Attachable": attachable,
        "IPAM": {"Config": [{"Subnet": subnet, "Gateway": "10.42.0.1"}]},
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097", **(options or {})},
    }


MTU = "com.docker.network.driver.mtu"


@pytest.mark.parametrize(
    ("current", "subnet", "mtu", "encrypted", "expected"),
    [
        (None, "10.42.0.0/24", 1450, True, []),
        (overlay(), "10.42.0.0/24", None, False, []),
        (overlay(options={MTU: "1450"}), "10.42.0.0/24", 1450, False, []),
        (overlay(), None, None, False, []),  # unset subnet: Docker's choice stands
        (overlay(), "10.43.0.0/24", None, False, ["subnet is 10.42.0.0/24, wanted 10.43.0.0/24"]),
        (overlay(), None, 9000, False, ["MTU is the default, wanted 9000"]),
        (overlay(options={MTU: "1450"}), None, 9000, False, ["MTU is 1450, wanted 9000"]),
        (overlay(), None, None, True, ["it is not encrypted, wanted encrypted"]),
        (overlay(options={"encrypted": ""}), None, None, False, ["it is encrypted, wanted unencrypted"]),
        (overlay(attachable=False), None, None, False, ["it is not attachable"]),
        (
            overlay(driver="bridge", scope="local"),
            None,
            None,
            False,
            ["driver is bridge, wanted overlay", "scope is local, wanted swarm"],
        ),
    ],
)
def test_recreate_reasons(current, subnet, mtu, encrypted, expected):
    assert recreate_reasons(current, subnet, mtu, encrypted) == expected


@pytest.mark.parametrize(
    ("mtu", "encrypted", "options"),
    [(None, False, {}), (1450, False, {MTU: "1450"}), (None, True, {"encrypted": ""})],
)
def test_wanted_driver_options(mtu, encrypted, options):
    assert wanted_driver_options(mtu, encrypted) == options


def service(name, *targets):
    return {
        "ID": name + "-id",
        "Spec": {"Name": name, "TaskTemplate": {"Networks": [{"Target": t} for t in targets]}},
    }


def test_services_using_matches_by_id_or_name():
    services = [
        service("train-0", "net1"),
        service("other", "net2"),
        service("by-name", "ddp-net"),
        service("none"),
    ]
    assert services_using(services, "net1", "ddp-net") == ["by-name", "train-0"]


def test_services_using_an_empty_swarm():
    assert services_using([], "net1", "ddp-net") == []
