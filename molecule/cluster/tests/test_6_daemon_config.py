"""daemon.json changes restart Docker one host at a time, each healthy before the next, and a
key this collection set and no longer wants is removed while the admin's keys stay."""

from __future__ import annotations

import itertools
import json

from harness import node, run_cluster_playbook, swarm_nodes

HOSTS = ("node0", "node1", "node2")


def restart_window(name: str) -> tuple[int, int]:
    """When dockerd's current process started and when systemd saw it ready, in the kernel's
    monotonic clock, which the node containers share with this machine."""
    out = node(name).check_output(
        "systemctl show docker -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic"
    )
    values = dict(line.split("=", 1) for line in out.splitlines())
    return int(values["ExecMainStartTimestampMonotonic"]), int(values["ActiveEnterTimestampMonotonic"])


def daemon_json(name: str) -> dict:
    return json.loads(node(name).file("/etc/docker/daemon.json").content_string)


def test_a_new_key_restarts_docker_one_host_at_a_time_and_is_removed_when_unwanted(inventory, tmp_path):
    options = dict(inventory["all"]["vars"].get("docker_daemon_options") or {})
    options.update({"log-driver": "json-file", "log-opts": {"max-size": "50m", "max-file": "5"}})
    inventory["all"]["vars"]["docker_daemon_options"] = {**options, "max-concurrent-uploads": 3}
    before = {h: restart_window(h) for h in HOSTS}

    run = run_cluster_playbook(inventory, tmp_path)

    assert run.rc == 0
    windows = sorted(restart_window(h) for h in HOSTS)
    assert all(restart_window(h) != before[h] for h in HOSTS), "every host restarted Docker"
    for (_unused, ready), (next_start, _unused) in itertools.pairwise(windows):
        assert next_start >= ready, f"a restart began before the previous host was back: {windows}"
    for h in HOSTS:
        assert daemon_json(h)["max-concurrent-uploads"] == 3
        assert daemon_json(h)["max-concurrent-downloads"] == 4  # the admin's key
    assert all(n["Status"]["State"] == "ready" for n in swarm_nodes().values())

    inventory["all"]["vars"]["docker_daemon_options"] = options
    run = run_cluster_playbook(inventory, tmp_path)

    assert run.rc == 0
    for h in HOSTS:
        assert "max-concurrent-uploads" not in daemon_json(h)
        assert daemon_json(h)["max-concurrent-downloads"] == 4
    again = run_cluster_playbook(inventory, tmp_path)
    again.assert_unchanged(*HOSTS)
