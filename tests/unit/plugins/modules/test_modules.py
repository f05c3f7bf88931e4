"""The modules' entry points: argument handling, check mode, diff, and what they write."""

from __future__ import annotations

import json

from ansible_collections.torchswarm.ddp.plugins.modules import (
    docker_daemon_config,
    image_push,
    image_relay,
    training_run_files,
    validate_inventory,
)
from module_runner import run_module, run_module_as_ansible_does


def daemon_config(path, options, **extra):
    args = {"path": str(path), "options": options, "record_dir": str(path.parent / "records"), **extra}
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

    again, _unused = daemon_config(path, {"log-driver": "json-file"})
    assert again["changed"] is False


def test_daemon_config_reformatting_is_not_a_change(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{ "log-driver" :"json-file",\n\n "debug":true }')
    result, _unused = daemon_config(path, {"debug": True})
    assert result["changed"] is False
    assert path.read_text().startswith("{ ")  # not rewritten


def test_daemon_config_check_mode_writes_nothing_and_diff_shows_both_sides(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    result, _unused = daemon_config(path, {"debug": False}, _ansible_check_mode=True, _ansible_diff=True)
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


def test_daemon_config_removes_only_keys_this_owner_set_and_no_longer_wants(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"max-concurrent-downloads": 4, "runtimes": {"crun": {"path": "crun"}}}')
    nvidia = {"owner": "nvidia"}
    wanted = {"default-runtime": "nvidia", "runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}
    daemon_config(path, {"log-driver": "json-file"})  # another owner's key
    daemon_config(path, wanted, **nvidia)

    result, failed = daemon_config(path, {"runtimes": wanted["runtimes"]}, **nvidia)

    assert not failed and result["changed"] and result["removed"] == ["default-runtime"]
    assert json.loads(path.read_text()) == {
        "max-concurrent-downloads": 4,
        "log-driver": "json-file",
        "runtimes": {"crun": {"path": "crun"}, "nvidia": {"path": "nvidia-container-runtime"}},
    }
    # No GPUs any more: the runtime goes, the admin's runtime and keys stay.
    result, _unused = daemon_config(path, {}, **nvidia)
    assert json.loads(path.read_text()) == {
        "max-concurrent-downloads": 4,
        "log-driver": "json-file",
        "runtimes": {"crun": {"path": "crun"}},
    }
    again, _unused = daemon_config(path, {}, **nvidia)
    assert again["changed"] is False


def test_daemon_config_keeps_a_key_someone_else_changed_since(tmp_path):
    path = tmp_path / "daemon.json"
    daemon_config(path, {"default-runtime": "nvidia"}, owner="nvidia")
    path.write_text('{"default-runtime": "crun"}')  # an admin's choice now
    result, _unused = daemon_config(path, {}, owner="nvidia")
    assert result["changed"] is False
    assert json.loads(path.read_text()) == {"default-runtime": "crun"}


def test_daemon_config_refuses_bad_keys_and_plain_tcp_and_writes_nothing(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    options = {"log-drvier": "json-file", "max-concurrent-uploads": "three", "hosts": ["tcp://0.0.0.0:2375"]}
    result, failed = daemon_config(path, options)
    assert failed
    assert result["msg"].splitlines() == [
        f"{path} was not changed; the keys to set have problems:",
        "- 'log-drvier' is not a daemon.json key (dockerd would refuse to start)",
        "- 'max-concurrent-uploads' must be an integer, not \"three\"",
        "- hosts entry 'tcp://0.0.0.0:2375' opens Docker's API on TCP without TLS (tlsverify), which is root "
        "on this host for anyone who reaches it; use unix:// or set tlsverify with tlscacert, tlscert and "
        "tlskey",
    ]
    assert path.read_text() == '{"debug": true}'


def test_daemon_config_accepts_tcp_with_tlsverify(tmp_path):
    path = tmp_path / "daemon.json"
    tls = {"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True, "tlscacert": "/ca.pem"}
    result, failed = daemon_config(path, tls)
    assert not failed and result["changed"]


def test_daemon_config_writes_through_a_symlink(tmp_path):
    target = tmp_path / "real.json"
    target.write_text('{"debug": true}')
    link = tmp_path / "daemon.json"
    link.symlink_to(target)
    _unused, failed = daemon_config(link, {"log-driver": "json-file"})
    assert not failed
    assert link.is_symlink()
    assert json.loads(target.read_text()) == {"debug": True, "log-driver": "json-file"}


def test_daemon_config_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "daemon.json"
    path.write_bytes(b'{"labels": ["caf\xe9"]}')
    result, failed = daemon_config(path, {"debug": True})
    assert failed and "not UTF-8" in result["msg"]
    assert path.read_bytes() == b'{"labels": ["caf\xe9"]}'


def test_daemon_config_never_writes_a_file_dockerd_refuses(tmp_path, monkeypatch):
    """dockerd --validate (Docker 23+) gets the last word; its refusal leaves the old file."""
    dockerd = tmp_path / "bin" / "dockerd"
    dockerd.parent.mkdir()
    dockerd.write_text('#!/bin/sh\necho "unable to configure the Docker daemon: bad bip" >&2\nexit 1\n')
    dockerd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{dockerd.parent}:/usr/bin:/bin")
    path = tmp_path / "daemon.json"
    path.write_text('{"debug": true}')
    result, failed = daemon_config(path, {"bip": "10.0.0.1/33"})
    assert failed and "dockerd refuses" in result["msg"] and "bad bip" in result["msg"]
    assert path.read_text() == '{"debug": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "daemon.json"]  # no temporary file left


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
    assert result["errors"] == [
        "host m0: network_subnet '10.1.1.1/8' is not a network: 10.1.1.1/8 has host bits set",
        "host w1: its hostname 'm0' (ansible_facts.nodename) is also the hostname of m0; swarm placement by "
        "node.hostname needs unique hostnames",
        "host w1: swarm_advertise_addr 'nope' is not an IP address",
    ]
    assert result["msg"] == "The inventory has problems; nothing was changed on any host:\n" + "\n".join(
        f"- {e}" for e in result["errors"]
    )


def test_validate_inventory_warns_on_even_managers():
    nodes = dict(NODES, w1=dict(NODES["w1"]))
    result, failed = run_module(validate_inventory.main, {"managers": ["m0", "w1"], "nodes": nodes})
    assert not failed
    assert any("raft quorum" in w for w in result.get("warnings", []))


def test_validate_inventory_rejects_a_missing_option():
    result, failed = run_module(validate_inventory.main, {"nodes": NODES})
    assert failed
    assert "managers" in result["msg"]


def test_image_relay_send_needs_an_address_and_a_failure_hides_the_token(monkeypatch):
    args = {"mode": "send", "image": "img", "image_id": "sha256:1", "token": "t0k3n-s3cret"}
    result, failed = run_module(image_relay.main, args)
    assert failed and "address" in result["msg"]

    def refuse(_docker, _address, _port, token, *_args, **_kwargs):
        # An error that carries the token, as a receiver's echo of a bad header would.
        raise image_relay.StreamError(f"10.0.0.9:29600 refused the header 'TSW1 {token} zstd'")

    monkeypatch.setattr(image_relay, "send", refuse)
    result, status = run_module_as_ansible_does(image_relay.main, {**args, "address": "10.0.0.9"})
    assert status == 1 and result["failed"]
    assert result["msg"] == (
        "image_relay send of img on port 29600: 10.0.0.9:29600 refused the header 'TSW1 ******** zstd'"
    )
    assert "t0k3n-s3cret" not in json.dumps(result)


def test_image_push_masks_the_password_in_its_error(monkeypatch):
    def refuse(image, auth):
        raise image_push.PushError("unauthorized: user ci with password hunter2 is not allowed")

    monkeypatch.setattr(image_push, "push", refuse)
    args = {"name": "10.0.0.5:5000/team/trainer:1", "username": "ci", "password": "hunter2"}
    result, failed = run_module(image_push.main, args)
    assert failed
    assert "hunter2" not in str(result)
    assert result["msg"].startswith(
        "push of 10.0.0.5:5000/team/trainer:1 to 10.0.0.5:5000 failed: unauthorized"
    )


def test_host_states_read_of_daemon_json_says_unchanged_exactly_where_the_module_changes_nothing(tmp_path):
    """The roles skip docker_daemon_config where daemon_config_unchanged says so, from what
    host_state read: the two must agree, step by step, as owners come and go."""
    from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import unchanged
    from ansible_collections.torchswarm.ddp.plugins.module_utils._host_state import daemon_config_files

    path = tmp_path / "daemon.json"
    records = tmp_path / "records"
    steps = [
        ("torchswarm.ddp.docker", {"log-driver": "local"}),  # no file yet
        ("torchswarm.ddp.docker", {"log-driver": "local"}),  # in place
        ("torchswarm.ddp.nvidia", {}),  # an owner that wants nothing and never set anything
        ("torchswarm.ddp.nvidia", {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}),
        ("torchswarm.ddp.docker", {"log-driver": "local"}),  # the other owner's keys do not matter
        ("torchswarm.ddp.nvidia", {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}),
        ("torchswarm.ddp.nvidia", {}),  # no GPUs any more: its keys go
        ("torchswarm.ddp.docker", {"log-driver": "local", "debug": True}),
        ("torchswarm.ddp.docker", {"log-driver": "local"}),  # a key it no longer wants goes
        ("torchswarm.ddp.docker", {"log-driver": "local"}),
    ]
    seen = []
    for owner, options in steps:
        said = unchanged(daemon_config_files(str(path), str(records)), owner, options)
        result, failed = daemon_config(path, options, owner=owner, _ansible_check_mode=True)
        assert not failed, result
        assert said is not result["changed"], (owner, options, path.read_text() if path.exists() else None)
        seen.append(said)
        daemon_config(path, options, owner=owner)
    assert seen == [False, True, True, False, True, True, False, False, False, True]

    path.write_text('{"log-driver": "local", "debug": true}')  # an admin sets the key it dropped
    state = daemon_config_files(str(path), str(records))
    assert unchanged(state, "torchswarm.ddp.docker", {"log-driver": "local"})  # theirs now
    path.write_text('{"log-driver": "local",')  # broken: the module must run and say so
    assert not unchanged(
        daemon_config_files(str(path), str(records)), "torchswarm.ddp.docker", {"log-driver": "local"}
    )
    assert not unchanged(None, "torchswarm.ddp.docker", {})  # not read


def test_run_files_reads_a_snapshot_directory_and_wants_it_named_one_way(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"event": "summary"}\n')
    result, failed = run_module(training_run_files.main, {"path": str(tmp_path), "run": "abc123"})
    assert not failed and result["changed"] is False
    found = (result["path"], result["completion"], result["metrics"])
    assert found == (str(tmp_path), {}, '{"event": "summary"}\n')
    both = {"path": str(tmp_path), "volume": "ddp-snapshots", "run": "abc123"}
    result, failed = run_module(training_run_files.main, both)
    assert failed and "mutually exclusive: path|volume" in result["msg"]
