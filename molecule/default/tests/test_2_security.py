"""Secrets stay secret from the first converge on, values reach tasks byte for byte, check mode
changes nothing, and input no restart can fix fails the job at once.

molecule ran the first converge at -vvv with ANSIBLE_LOG_PATH and the log_plays callback
(molecule.yml), with job_secrets set: everything Ansible showed or logged is on disk to search.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import yaml

from harness import first_converge_log, node, results_of, run_site_playbook, stack_tasks, task_ids

SECRET = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())["provisioner"]["inventory"][
    "group_vars"
]["all"]["job_secrets"]["API_TOKEN"]
DOLLARS = "pa$$w0rd$HOME ${X} ${X:?y} $ \U0001f680"
SERVICES = ("ddp_node0", "ddp_node1", "ddp_node2")


def manager(command: str) -> str:
    return node("node0").check_output(command)


def service_env(service: str) -> list[str]:
    return json.loads(manager(f"docker service inspect {service}"))[0]["Spec"]["TaskTemplate"][
        "ContainerSpec"
    ]["Env"]


def secret_refs(service: str) -> list[dict]:
    return json.loads(manager(f"docker service inspect {service}"))[0]["Spec"]["TaskTemplate"][
        "ContainerSpec"
    ]["Secrets"]


def test_the_first_converge_showed_and_logged_no_secret_and_no_join_token():
    text = first_converge_log()
    assert "TASK [torchswarm.ddp.job : Render and deploy the training stack]" in text
    assert "Using module file" in text, "the converge did not run at -vvv"
    assert SECRET not in text
    assert "SWMTKN-" not in text
    # The image transfers' one-time token: every invocation logged shows it masked.
    tokens = re.findall(r'"token": "([^"]*)"', text)
    assert tokens and set(tokens) == {"VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}, set(tokens)


def test_the_secret_is_a_swarm_secret_exported_in_every_task_and_nowhere_in_plain_sight():
    for service in SERVICES:
        [ref] = secret_refs(service)
        assert ref["File"]["Name"] == "API_TOKEN" and ref["File"]["Mode"] == 0o400
        assert ref["SecretName"].startswith("ddp_API_TOKEN_")
        assert "TORCHSWARM_SECRETS=API_TOKEN" in service_env(service)
        logs = manager(f"docker service logs --raw {service} 2>&1")  # the entrypoint writes to stderr
        assert "torchswarm: exported secrets API_TOKEN" in logs  # mounted and read in the task
        assert SECRET not in logs
    everywhere = manager(
        "cat /var/lib/torchswarm/stacks/ddp.yml; docker service inspect "
        + " ".join(SERVICES)
        + "; docker secret inspect $(docker secret ls -q)"
    )
    assert SECRET not in everywhere


def test_the_results_on_the_controller_hold_no_secret_and_hide_job_env():
    run = results_of("ddp")
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert "API_TOKEN" in (run / "stack.json").read_text()  # the name is there, as a swarm secret's


def test_check_mode_says_what_would_change_and_changes_nothing(inventory, tmp_path):
    inventory["all"]["vars"]["job_env"] = {"TORCHSWARM_TEST_DOLLARS": DOLLARS}
    before = task_ids("ddp")

    run = run_site_playbook(inventory, tmp_path, "--check", "--diff")

    assert run.rc == 0
    assert "deploy stack ddp (3 services)" in run.output
    assert '"TORCHSWARM_TEST_DOLLARS": "<hidden> (changed)"' in run.output
    assert DOLLARS not in run.output and SECRET not in run.output
    assert "TASK [torchswarm.ddp.job : Say what would be deployed]" in run.output
    assert "Wait for the job, printing its progress" not in run.output  # the wait was not included
    assert "epochs trained" not in run.output  # no summary of an earlier run
    assert task_ids("ddp") == before


def test_dollars_reach_every_task_byte_for_byte_and_a_rotated_secret_redeploys(inventory, tmp_path):
    inventory["all"]["vars"]["job_env"] = {"TORCHSWARM_TEST_DOLLARS": DOLLARS}
    inventory["all"]["vars"]["job_secrets"] = {"API_TOKEN": "tsw-rotated-8d1e-not-in-any-log"}
    old = secret_refs("ddp_node0")[0]["SecretName"]

    run = run_site_playbook(inventory, tmp_path, "-vvvv")

    assert run.rc == 0, "the deploy failed: a $ was interpolated, or the emoji broke the stack file"
    assert SECRET not in run.output and "tsw-rotated-8d1e-not-in-any-log" not in run.output
    for service in SERVICES:
        assert f"TORCHSWARM_TEST_DOLLARS={DOLLARS}" in service_env(service)
        assert secret_refs(service)[0]["SecretName"] not in (old, "")
    assert old not in manager("docker secret ls --format '{{.Name}}'").split()
    kept = (results_of("ddp") / "stack.json").read_text()  # this run's results
    assert DOLLARS not in kept and '"TORCHSWARM_TEST_DOLLARS": "<hidden>"' in kept


def test_input_no_restart_can_fix_fails_the_job_at_once(inventory, tmp_path):
    """Before: exit 0, steps 0, loss 0.0, and the job reported complete."""
    inventory["all"]["vars"].update(job_name="refused", job_batch_size=5000, job_restart_delay="10s")
    started = time.monotonic()

    run = run_site_playbook(inventory, tmp_path)

    seconds = time.monotonic() - started
    tasks = [t for history in stack_tasks("refused").values() for t in history]
    manager("docker stack rm refused")
    assert run.rc != 0
    assert "Job refused is failed after waiting" in run.output
    assert "exit code 3: the job cannot run as it is" in run.output
    # The reason, with the services that gave it (one or more: the wait ends at the first).
    why = r"gave up: no training step per epoch: .*--batch_size 5000.*\(refused_node\d"
    assert re.search(why, run.output)
    assert any("non-zero exit (3)" in t["Error"] for t in tasks), tasks
    assert seconds < 300, f"{seconds:.0f} s: the wait sat through the swarm's restarts"


def test_a_registry_password_is_never_shown_even_when_login_fails(inventory, tmp_path):
    password = "tsw-registry-pw-5b7e-not-in-any-log"
    inventory["all"]["vars"].update(
        image_source="registry",
        image_registry_url="127.0.0.1:5999",
        image_registry_username="trainer",
        image_registry_password=password,
    )
    run = run_site_playbook(inventory, tmp_path, "-vvvv")

    assert run.rc != 0
    assert (
        "docker login to image_registry_url '127.0.0.1:5999' as image_registry_username 'trainer' failed"
        in run.output
    )
    assert password not in run.output
