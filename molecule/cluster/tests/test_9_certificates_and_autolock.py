"""Day 2 on the swarm: a run at -vvv sets a 25-day certificate lifetime, turns autolock on and
rotates the CA; every node gets a new certificate, which status.yml reports with a warning (under
30 days); a re-run changes nothing. Docker restarted on the manager leaves it locked: a run without
the unlock key stops naming the host and the variable, one with it unlocks the manager. The unlock
key is never in the output. Autolock is turned off again at the end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cryptography import x509

from harness import docker_json, node, run_cluster_playbook, run_playbook, wait_for

HOSTS = ("node0", "node1", "node2")
CERT = "/var/lib/docker/swarm/certificates/swarm-node.crt"
HOUR_NS = 3600 * 10**9


def cert_end(host: str) -> datetime:
    """The node's certificate's end, read here with the cryptography library."""
    return x509.load_pem_x509_certificate(node(host).file(CERT).content).not_valid_after_utc


def cluster_spec() -> dict:
    """The swarm's spec, as the manager node0 shows it."""
    return docker_json(node("node0"), "info", "--format", "'{{json .Swarm.Cluster.Spec}}'")


def swarm_state(host: str) -> str:
    return node(host).check_output("docker info --format '{{.Swarm.LocalNodeState}}'")


def test_certificates_rotate_to_a_new_lifetime_and_a_locked_manager_is_unlocked(inventory, tmp_path):
    inventory["all"]["vars"].update(swarm_autolock=True, swarm_cert_expiry="600h")
    run = run_cluster_playbook(inventory, tmp_path, "-vvv", "-e", "swarm_ca_rotate=true")
    assert run.rc == 0, run.output[-3000:]
    key = node("node0").check_output("docker swarm unlock-key -q")
    assert key.startswith("SWMKEY-") and key not in run.output
    spec = cluster_spec()
    assert spec["CAConfig"]["NodeCertExpiry"] == 600 * HOUR_NS
    assert spec["EncryptionConfig"]["AutoLockManagers"] is True

    # The rotation gives every node a certificate of the new lifetime as it talks to the manager.
    soon = datetime.now(UTC) + timedelta(days=26)
    wait_for(lambda: all(cert_end(h) < soon for h in HOSTS), 180, "every node's new certificate")
    status = run_playbook("../../playbooks/status.yml", inventory, tmp_path)
    text = " ".join(status.output.split())
    assert status.rc == 0
    for host in HOSTS:
        # swarmkit's new certificate ends 600 h after it was issued, give or take its clock skew
        assert re.search(rf"WARNING: host {host}: its swarm certificate expires in 2[45] day[(]s[)]", text)

    run_cluster_playbook(inventory, tmp_path).assert_unchanged(*HOSTS)

    # Docker restarts on the only manager: autolock keeps it locked until the key is given.
    node("node0").run("systemctl restart docker")
    wait_for(lambda: swarm_state("node0") == "locked", 120, "node0 to come back locked")
    refused = run_cluster_playbook(inventory, tmp_path)
    assert refused.rc != 0
    locked = "host node0: its swarm manager is locked (autolock, and Docker restarted there)"
    assert f"{locked}; give swarm_unlock_key" in " ".join(refused.output.split())
    inventory["all"]["vars"]["swarm_unlock_key"] = key
    unlocked = run_cluster_playbook(inventory, tmp_path, "-vvv")
    assert unlocked.rc == 0, unlocked.output[-3000:]
    assert key not in unlocked.output
    assert swarm_state("node0") == "active"
    wait_for(lambda: all(swarm_state(h) == "active" for h in HOSTS), 60, "every node active")

    inventory["all"]["vars"]["swarm_autolock"] = False
    assert run_cluster_playbook(inventory, tmp_path).rc == 0
    spec = cluster_spec()
    assert not spec.get("EncryptionConfig", {}).get("AutoLockManagers")
