"""Version pins (docker_version, nvidia_toolkit_version): which values are versions, how apt is
asked for them, and which installed packages differ; with versions as Debian and Docker's and
NVIDIA's repositories spell them."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.filter import packages as package_filters
from ansible_collections.torchswarm.ddp.plugins.module_utils import _package_pins as package_pins

DOCKER_CE = "5:27.3.1-1~debian.12~bookworm"
DEBIAN = "20.10.24+dfsg1-1+deb12u1+b6"


@pytest.mark.parametrize(
    "version", [DOCKER_CE, "5:27.3.*", DEBIAN, "1.19.0-1", "26.1.5+dfsg1-9+b9", "1.*", ""]
)
def test_versions_as_repositories_spell_them_are_pins(version):
    assert package_pins.problems("docker_version", version) == []


@pytest.mark.parametrize("version", ["latest", "v27.3.1", "27.3 ", "5:27.*.1", "27.3.1;rm -rf /", 27.3])
def test_anything_else_is_refused_naming_the_variable(version):
    [problem] = package_pins.problems("docker_version", version)
    assert problem.startswith(f"docker_version: {version!r} is not a package version such as 5:27.3.1-1")


def test_apt_is_asked_for_the_pinned_packages_at_the_version_and_the_others_as_they_are():
    names = package_filters.apt_pinned(
        ["docker-ce", "docker-ce-cli", "containerd.io", "zstd"], ["docker-ce", "docker-ce-cli"], "5:27.3.*"
    )
    assert names == ["docker-ce=5:27.3.*", "docker-ce-cli=5:27.3.*", "containerd.io", "zstd"]
    assert package_filters.apt_pinned(["docker.io", "zstd"], ["docker.io"], "") == ["docker.io", "zstd"]


@pytest.mark.parametrize(
    ("installed", "version", "drift"),
    [
        ({"docker.io": DEBIAN}, DEBIAN, {}),
        ({"docker.io": DEBIAN}, "20.10.*", {}),
        ({"docker.io": DEBIAN}, "20.10.24+dfsg1-1+deb12u1+b6+torchswarm1", {"docker.io": DEBIAN}),
        ({"docker.io": DEBIAN}, "20.1.*", {"docker.io": DEBIAN}),  # a prefix of the text, not of 20.10
        ({"docker.io": ""}, "26.1.5+dfsg1-9", {}),  # not installed: the install's business
        ({}, "26.1.5+dfsg1-9", {}),
        ({"docker.io": DEBIAN}, "", {}),  # no pin, no drift
    ],
)
def test_drift_is_the_installed_pinned_packages_at_another_version(installed, version, drift):
    assert package_filters.package_drift(installed, ["docker.io"], version) == drift


def test_the_engine_and_its_cli_are_both_named_when_both_drift():
    installed = {
        "docker-ce": "5:26.1.4-1~debian.12~bookworm",
        "docker-ce-cli": DOCKER_CE,
        "containerd.io": "1.7",
    }
    drift = package_pins.drift(installed, ["docker-ce", "docker-ce-cli"], "5:27.*")
    assert drift == {"docker-ce": "5:26.1.4-1~debian.12~bookworm"}


def test_an_upgrade_needs_a_version_and_a_good_one():
    none_set = package_pins.upgrade_refusals("node1", {"docker_version": "", "nvidia_toolkit_version": ""})
    assert none_set == [
        "host node1: maintenance_upgrade installs docker_version or nvidia_toolkit_version, and neither "
        "is set for it; set the version to upgrade to"
    ]
    bad = package_pins.upgrade_refusals("node1", {"docker_version": "latest", "nvidia_toolkit_version": ""})
    assert bad == [f"host node1: {package_pins.problems('docker_version', 'latest')[0]}"]
    assert (
        package_pins.upgrade_refusals("node1", {"docker_version": DEBIAN, "nvidia_toolkit_version": ""}) == []
    )
