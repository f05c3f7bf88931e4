"""A job that cannot start fails within minutes, saying why, instead of restarting for ever: a
script that is not in the image, and a user's script that fails at its start on every rank. Each
rank's container is checked from inside before torchrun starts: a /dev/shm too small is named.

Before: both were accepted; every rank failed at once, the swarm restarted them again and again,
and for 400 s (when the check gave up) the wait alternated "recovering" and "3 of 3 hosts
training", though no rank had trained a step.
"""

from __future__ import annotations

import re

from harness import node, run_site_playbook

# A user's script, shipped from the controller, that fails at its start on every rank.
FAILS_AT_IMPORT = "import torchswarm\nimport no_such_module_in_the_image\n"


def waited(output: str, job: str) -> float:
    return float(re.search(rf"Job {job} is failed after waiting ([0-9.]+) s", output).group(1))


def test_a_job_that_cannot_start_fails_in_minutes_with_its_reason_and_no_host_training(inventory, tmp_path):
    script = tmp_path / "src" / "broken.py"
    script.parent.mkdir()
    script.write_text(FAILS_AT_IMPORT)
    runs = {}
    for job, extra in (
        ("typo", {"job_script": "trian.py"}),
        ("broken", {"job_script": "broken.py", "job_script_src": str(script.parent), "job_shm_size": "64m"}),
    ):
        inventory["all"]["vars"].update(job_name=job, job_wait_interval=1, **extra)
        runs[job] = run_site_playbook(inventory, tmp_path)
        node("node0").check_output(f"docker stack rm {job}")
        print(f"{job}: failed after waiting {waited(runs[job].output, job)} s")

    typo, broken = runs["typo"], runs["broken"]
    assert typo.rc != 0 and broken.rc != 0
    missing = r"gave up: the script trian\.py is not in the image \(no such file in /workspace\)"
    assert re.search(missing, typo.output)
    assert re.search(
        r"gave up: the script failed 3 times in a row before its first step: "
        r"rank \d: ModuleNotFoundError: No module named 'no_such_module_in_the_image' \(broken\.py:2\)",
        broken.output,
    )
    assert re.search(r"broken: broken_node\d: /dev/shm 64 MiB, memlock \S+, open files \d+", broken.output)
    assert re.search(r"broken: warning: broken_node\d: /dev/shm is 64 MiB: DataLoader workers", broken.output)
    for job, run in runs.items():
        assert waited(run.output, job) < 180, run.output[-3000:]
        assert "hosts training" not in run.output and f"{job}: training at world size" not in run.output
