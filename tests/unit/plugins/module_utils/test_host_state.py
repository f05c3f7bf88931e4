"""A host's packages, units and GPUs read in one call, from what the real tools print.

The dpkg-query and systemctl outputs below were printed by a Debian 12 node container (systemd,
docker.io installed); the runner stands in for the module's run_command at its boundary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _host_state as host_state
from ansible_collections.torchswarm.ddp.plugins.modules import host_state as host_state_module
from module_runner import run_module

DPKG = "docker.io\tii \t20.10.24+dfsg1-1+deb12u1+b6\npython3-docker\tii \t5.0.3-1\nzstd\trc \t1.5.4+dfsg2-5\n"
SMI = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3b9a1c2d-0000-1111-2222-333344445555)\n"


def runner(outputs: dict[str, tuple[int, str, str]], calls: list[list[str]]):
    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        # "docker image" before "docker": the engine is asked twice.
        key = next((k for k in (" ".join(argv[:2]), argv[0]) if k in outputs), None)
        if key is None:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return outputs[key]

    return run


def test_installed_means_dpkg_says_ii_and_the_rest_read_as_missing():
    versions = host_state.installed_packages(DPKG, ["docker.io", "python3-docker", "zstd", "nosuchpkg"])
    assert versions == {
        "docker.io": "20.10.24+dfsg1-1+deb12u1+b6",
        "python3-docker": "5.0.3-1",
        "zstd": "",  # removed, its configuration left ("rc")
        "nosuchpkg": "",
    }


@pytest.mark.parametrize(
    ("enabled", "active", "state"),
    [
        ("enabled\n", "active\n", {"enabled": True, "active": True}),
        ("disabled\n", "inactive\n", {"enabled": False, "active": False}),
        ("", "inactive\n", {"enabled": False, "active": False}),  # no such unit: stderr only
        ("enabled\n", "failed\n", {"enabled": True, "active": False}),
    ],
)
def test_a_unit_counts_as_enabled_and_running_only_when_systemctl_says_so(enabled, active, state):
    assert host_state.unit_states(["docker"], enabled, active) == {"docker": state}


def test_systemctl_stopping_at_an_unknown_unit_reads_as_nothing_known():
    """`systemctl is-enabled docker nosuch ssh` prints one line and stops: no line is trusted."""
    states = host_state.unit_states(["docker", "nosuch", "ssh"], "enabled\n", "active\ninactive\nactive\n")
    assert [s["enabled"] for s in states.values()] == [False, False, False]


def test_one_call_reads_packages_units_and_gpus_and_missing_tools_read_as_absent():
    calls: list[list[str]] = []
    outputs = {"dpkg-query": (0, DPKG, ""), "systemctl": (0, "enabled\n", "")}
    state = host_state.read(runner(outputs, calls), ["docker.io"], ["docker"], "nvidia-smi")
    assert state["packages"] == {"docker.io": "20.10.24+dfsg1-1+deb12u1+b6"}
    assert state["services"] == {"docker": {"enabled": True, "active": False}}
    assert state["nvidia_smi"]["rc"] == host_state.NOT_FOUND  # as the command module says it
    assert [c[:2] for c in calls] == [
        ["dpkg-query", "--show"],
        ["systemctl", "is-enabled"],
        ["systemctl", "is-active"],
        ["nvidia-smi", "-L"],
    ]


# docker info --format '{{json .Swarm}}' as Debian 12's engine (20.10) printed it in a swarm's
# worker, outside a swarm, and as the client printed it with no engine running; a manager's adds
# the cluster's spec and CA certificate ("Cluster"), which is not kept.
SWARM = (
    '{"NodeID":"5rhxpg5vuni4yldtl12hu9tyd","NodeAddr":"172.30.0.5","LocalNodeState":"active",'
    '"ControlAvailable":false,"Error":"","RemoteManagers":[{"NodeID":"sqxx2mpykjo9ljbm0fxnmi8hi",'
    '"Addr":"172.30.0.2:2377"}]}\n'
)
INACTIVE = (
    '{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"",'
    '"RemoteManagers":null}\n'
)
NO_ENGINE = (
    'template: :1:7: executing "" at <.Swarm>: reflect: indirection through nil pointer to embedded '
    "struct field Info\n"
)
# Debian 13's CLI (26.1.5) with no engine running: an empty Swarm, exit status 0.
NO_ENGINE_26 = (
    '{"NodeID":"","NodeAddr":"","LocalNodeState":"","ControlAvailable":false,"Error":"",'
    '"RemoteManagers":null}\n'
)


def test_the_swarm_state_is_read_where_an_engine_answers_and_none_where_not():
    state = host_state.swarm_state(0, SWARM)
    assert state["LocalNodeState"] == "active" and state["NodeID"] == "5rhxpg5vuni4yldtl12hu9tyd"
    assert state["ControlAvailable"] is False
    assert host_state.swarm_state(0, INACTIVE)["LocalNodeState"] == "inactive"
    manager = SWARM.replace(
        '"RemoteManagers"', '"Cluster":{"TLSInfo":{"TrustRoot":"-----BEGIN"}},"RemoteManagers"'
    )
    assert "Cluster" not in host_state.swarm_state(0, manager)
    assert host_state.swarm_state(0, SWARM)["Settings"] == {}  # a worker sees no cluster spec
    spec = (
        '"Spec":{"CAConfig":{"NodeCertExpiry":7776000000000000},"EncryptionConfig":{"AutoLockManagers":true}}'
    )
    with_spec = SWARM.replace('"RemoteManagers"', '"Cluster":{' + spec + '},"RemoteManagers"')
    assert host_state.swarm_state(0, with_spec)["Settings"] == {
        "cert_expiry_ns": 7776000000000000,
        "autolock": True,
    }
    assert host_state.swarm_state(1, NO_ENGINE) is None
    assert host_state.swarm_state(0, NO_ENGINE_26) is None
    assert host_state.swarm_state(0, "") is None
    assert host_state.swarm_state(0, "null") is None


# Printed by a bench node's Docker 20.10 (IMAGE_LS), after `docker tag` of the trainer as
# ddp-user; the registry's name and the untagged line are that format with other names.
IMAGES = (
    "ddp-user:latest sha256:2187bfb0f18cd5348688acf0be931974b3bf024fe767b82a85716e4aab051d43\n"
    "torchswarm/trainer:latest sha256:2187bfb0f18cd5348688acf0be931974b3bf024fe767b82a85716e4aab051d43\n"
    "172.30.0.250:5000/torchswarm/trainer:registry "
    "sha256:0f4c2d6e8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d\n"
    "<none>:<none> sha256:9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d\n"
)


def test_the_engine_is_asked_only_when_wanted():
    calls: list[list[str]] = []
    engine = {"docker": (0, SWARM, ""), "docker image": (0, IMAGES, "")}
    state = host_state.read(runner(engine, calls), [], [], "", engine=True)
    assert state["swarm"]["RemoteManagers"][0]["Addr"] == "172.30.0.2:2377"
    assert calls == [["docker", "info", "--format", "{{json .Swarm}}"], host_state.IMAGE_LS]
    assert "swarm" not in host_state.read(runner({}, calls), [], [], "")
    no_cli = host_state.read(runner({}, calls), [], [], "", engine=True)
    assert no_cli["swarm"] is None and no_cli["images"] is None


def test_the_images_are_read_by_name_and_tag_untagged_ones_left_out():
    calls: list[list[str]] = []
    engine = {"docker": (0, SWARM, ""), "docker image": (0, IMAGES, "")}
    images = host_state.read(runner(engine, calls), [], [], "", engine=True)["images"]
    assert images["torchswarm/trainer:latest"] == images["ddp-user:latest"]
    assert images["172.30.0.250:5000/torchswarm/trainer:registry"].startswith("sha256:0f4c")
    assert len(images) == 3
    # No engine: Docker 26's CLI (empty Swarm, rc 0) is not asked for images at all.
    calls.clear()
    state = host_state.read(runner({"docker": (0, NO_ENGINE_26, "")}, calls), [], [], "", engine=True)
    assert state["images"] is None and len(calls) == 1
    assert host_state.image_ids(1, "") is None


def test_nothing_asked_runs_nothing_and_gpus_are_listed_when_nvidia_smi_is_there():
    calls: list[list[str]] = []
    assert host_state.read(runner({}, calls), [], [], "") == {"packages": {}, "services": {}}
    assert calls == []
    state = host_state.read(
        runner({"/usr/bin/nvidia-smi": (0, SMI, "")}, calls), [], [], "/usr/bin/nvidia-smi"
    )
    assert state["nvidia_smi"] == {"rc": 0, "stdout": SMI, "stderr": ""}


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_the_module_asks_this_machines_dpkg_and_sets_the_fact_without_a_change():
    result, failed = run_module(host_state_module.main, {"packages": ["dpkg", "nosuchpkg-torchswarm"]})
    assert not failed and result["changed"] is False
    packages = result["ansible_facts"]["torchswarm_host"]["packages"]
    assert packages["dpkg"] and packages["nosuchpkg-torchswarm"] == ""


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian machine")
def test_without_as_fact_the_state_comes_back_as_host_and_the_fact_is_left_alone():
    args = {"packages": ["dpkg"], "as_fact": False}
    result, failed = run_module(host_state_module.main, args)
    assert not failed and result["host"]["packages"]["dpkg"]
    assert "torchswarm_host" not in result.get("ansible_facts", {})


def test_daemon_json_and_each_owners_record_are_read_and_what_cannot_be_read_is_unknown(
    tmp_path, monkeypatch
):
    path, records = tmp_path / "daemon.json", tmp_path / "records"
    assert host_state.daemon_config_files(str(path), str(records)) == {
        "path": str(path),
        "text": None,
        "records": {},
    }
    records.mkdir()
    path.write_text('{"log-driver": "local"}')
    (records / "torchswarm.ddp.docker.json").write_text('{"log-driver": "local"}\n')
    (records / "notes.txt").write_text("not a record")
    state = host_state.read(runner({}, []), [], [], "", daemon_config=str(path), record_dir=str(records))
    assert state["daemon_config"] == {
        "path": str(path),
        "text": '{"log-driver": "local"}',
        "records": {"torchswarm.ddp.docker": '{"log-driver": "local"}\n'},
    }
    assert host_state.daemon_config_files(str(tmp_path), str(records)) is None  # a directory
    path.write_bytes(b'{"labels": ["\xff"]}')
    assert host_state.daemon_config_files(str(path), str(records)) is None  # not UTF-8
    monkeypatch.setattr(host_state, "FILE_LIMIT", 8)
    path.write_text('{"log-driver": "local"}')
    assert host_state.daemon_config_files(str(path), str(records)) is None  # too large to be ours


# Printed by a Debian 12 node container: with its default route, and with that route deleted.
ROUTE = "8.8.8.8 via 172.30.0.1 dev eth0 src 172.30.0.3 uid 0 \n    cache \n"
NO_ROUTE = (2, "", "RTNETLINK answers: Network is unreachable\n")
DEBIAN_12 = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    "VERSION_CODENAME=bookworm\nID=debian\n"
)
UBUNTU_24 = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n'


def test_the_default_address_is_the_source_of_the_default_route_and_empty_without_one():
    assert host_state.default_route_address(0, ROUTE) == "172.30.0.3"
    assert host_state.default_route_address(*NO_ROUTE[:2]) == ""
    assert host_state.default_route_address(0, "8.8.8.8 dev eth0 src") == ""


@pytest.mark.parametrize(
    ("text", "distribution", "release"),
    [
        (DEBIAN_12, "Debian", "bookworm"),
        (UBUNTU_24, "Ubuntu", "noble"),
        ("ID='rocky'\n", "Rocky", ""),
        ("", "", ""),
    ],
)
def test_the_distribution_is_read_from_os_release_as_setup_spells_it(text, distribution, release):
    assert host_state.os_release(text) == {"distribution": distribution, "distribution_release": release}


def test_system_facts_without_a_route_or_systemd_leave_the_address_empty_and_no_service_manager():
    uname = type("Uname", (), {"nodename": "node7", "machine": "aarch64"})()
    calls: list[list[str]] = []
    facts = host_state.system_facts(runner({"ip": NO_ROUTE}, calls), uname, DEBIAN_12, systemd=False)
    assert calls == [["ip", "-4", "route", "get", "8.8.8.8"]]
    assert facts == {
        "nodename": "node7",
        "architecture": "aarch64",
        "default_ipv4": {"address": ""},
        "distribution": "Debian",
        "distribution_release": "bookworm",
    }
    # No ip at all reads the same.
    assert host_state.system_facts(runner({}, []), uname, "", systemd=True)["default_ipv4"] == {"address": ""}


@pytest.mark.skipif(
    shutil.which("ansible") is None or shutil.which("ip") is None, reason="needs ansible and ip"
)
def test_the_modules_facts_are_what_setup_says_on_this_machine(tmp_path):
    """The roles read these facts where they read setup's before: they must agree with setup."""
    subset = "gather_subset=!all,!min,network,distribution,platform,service_mgr"
    env = {**os.environ, "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"}
    subprocess.run(
        ["ansible", "localhost", "-m", "ansible.builtin.setup", "-a", subset, "--tree", str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    setup = json.loads((tmp_path / "localhost").read_text())["ansible_facts"]
    result, failed = run_module(host_state_module.main, {"facts": True})
    assert not failed and result["changed"] is False
    ours = result["ansible_facts"]
    for name in ("nodename", "architecture", "distribution", "distribution_release"):
        assert ours[name] == setup[f"ansible_{name}"], name
    assert ours["default_ipv4"]["address"] == setup["ansible_default_ipv4"].get("address", "")
    # Where systemd runs both say so; elsewhere ours leaves it to the service module to find out.
    assert ours.get("service_mgr") == ("systemd" if setup["ansible_service_mgr"] == "systemd" else None)
    assert "torchswarm_host" in ours


def test_paths_are_read_as_a_bind_mount_needs_them(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "locked").mkdir(mode=0o000)
    paths = [str(tmp_path / n) for n in ("data", "file", "gone", "locked")]
    state = host_state.read(runner({}, []), [], [], "", paths=paths)["paths"]
    assert state[paths[0]] == {"exists": True, "directory": True, "readable": True, "writable": True}
    assert state[paths[1]]["exists"] and not state[paths[1]]["directory"]
    assert state[paths[2]] == {"exists": False, "directory": False, "readable": False, "writable": False}
    # root may read any directory; anyone else may not read one with mode 000.
    assert state[paths[3]]["readable"] == (os.geteuid() == 0)
    assert "paths" not in host_state.read(runner({}, []), [], [], "")
