"""The modules' entry points: argument handling, check mode, diff, and what they write."""

from __future__ import annotations

import json

from ansible_collections.torchswarm.ddp.plugins.modules import docker_daemon_config, validate_inventory
from module_runner import run_module


def daemon_config(path, options, **extra):
    args = {"path": str(path), "options": options, **extra}
    return run_module(docker_daemon_config.main, args)


def test_daemon_config_merges_keeps_others_and_is_idempotent(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"max-concurrent-downloads": 4}')
    path.chmod(0o600)

    result, failed = daemon_config(path, {"log-driver": "json-file"})
    assert not failed
    assert result["changed"] is True
    assert json.loads(path.read_text()) == {"max-concurrent-downloads": 4, "log-driver": "json-file"}
    assert path.stat().st_mode & 0o777 == 0o600  # the admin's mode is kept

    again, _ = daemon_config(path, {"log-driver": "json-file"})
    assert again["changed"] is False


def test_daemon_config_reformatting_is_not_a_change(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{ "log-driver" :"json-file",\n\n "debug":true }')
    result, _ = daemon_config(path, {"debug": True})
    assert result["changed"] is False
    assert path.read_text().startswith("{ ")  # not rewritten


def test_daemon_config_check_mode_writes_nothing_and_diff_shows_both_sides(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    result, _ = daemon_config(path, {"debug": False}, _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True
    assert json.loads(path.read_text()) == {"debug": True}
    assert json.loads(result["diff"]["before"]) == {"debug": True}
    assert json.loads(result["diff"]["after"]) == {"debug": False}


def test_daemon_config_creates_the_file_and_its_directory(tmp_path):
    path = tmp_path / "docker" / "daemon.json"
    result, failed = daemon_config(path, {"debug": True})
    assert not failed and result["changed"]
    assert json.loads(path.read_text()) == {"debug": True}


def test_daemon_config_refuses_a_broken_file_and_leaves_it(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text("{not json")
    result, failed = daemon_config(path, {"debug": True})
    assert failed
    assert str(path) in result["msg"] and "not valid JSON" in result["msg"]
    assert path.read_text() == "{not json"


NODES = {
    "m0": {"hostname": "m0", "advertise_addr": "10.0.0.10", "state": "present"},
    "w1": {"hostname": "w1", "advertise_addr": "10.0.0.11", "state": "present"},
}


def test_validate_inventory_passes_a_good_inventory():
    result, failed = run_module(
        validate_inventory.main, {"managers": ["m0"], "workers": ["w1"], "nodes": NODES}
    )
    assert not failed
    assert result["changed"] is False


def test_validate_inventory_fails_listing_every_problem():
    nodes = dict(NODES, w1={"hostname": "m0", "advertise_addr": "nope", "state": "present"})
    result, failed = run_module(
        validate_inventory.main,
        {"managers": ["m0"], "workers": ["w1"], "nodes": nodes, "network_subnet": "10.1.1.1/8"},
    )
    assert failed
    assert result["msg"].startswith("The inventory has problems; nothing was changed on any host")
    assert len(result["errors"]) == 3
    for expected in ("hostname 'm0'", "swarm_advertise_addr 'nope'", "network_subnet '10.1.1.1/8'"):
        assert expected in result["msg"]


def test_validate_inventory_warns_on_even_managers():
    nodes = dict(NODES, w1=dict(NODES["w1"]))
    result, failed = run_module(validate_inventory.main, {"managers": ["m0", "w1"], "nodes": nodes})
    assert not failed
    assert any("raft quorum" in w for w in result.get("warnings", []))


def test_validate_inventory_rejects_a_missing_option():
    result, failed = run_module(validate_inventory.main, {"nodes": NODES})
    assert failed
    assert "managers" in result["msg"]
