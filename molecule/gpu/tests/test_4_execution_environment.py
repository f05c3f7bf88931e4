"""site.yml from the execution environment (ee/, built by make ee) with ansible-navigator, as its
users run it: ansible-core 2.21 on Debian 13's Python, the collection as its built tarball
installs it, community.docker from the ansible package, and the controller's packages that
meta/execution-environment.yml names. On the converged GPU nodes, a changed job option makes it
redeploy the job, wait for it and keep its results with plots (matplotlib, from the EE) on the
controller; a second run from it changes nothing."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from harness import EE_IMAGE, epochs_of, newest_ansible_core, png_size, results_of, run_site_playbook

ROOT = Path(__file__).resolve().parents[3]


def test_the_ee_holds_the_newest_ansible_core_and_the_built_collection_with_its_dependency():
    core = newest_ansible_core()
    galaxy = (ROOT / "galaxy.yml").read_text()
    version = re.search(r"^version: (\S+)$", galaxy, re.M)[1]

    def ee(*command: str) -> str:
        return subprocess.run(
            ["docker", "run", "--rm", EE_IMAGE, *command], capture_output=True, text=True, check=True
        ).stdout

    assert f"[core {core}]" in ee("ansible", "--version").splitlines()[0]
    listed = ee("ansible-galaxy", "collection", "list", "--format", "json")
    found = {name: info["version"] for path in json.loads(listed).values() for name, info in path.items()}
    assert found["torchswarm.ddp"] == version, found
    assert found["community.docker"].split(".")[0] in ("4", "5"), found  # galaxy.yml's range
    ee("python3", "-c", "import matplotlib, docker, requests")  # fails the check where missing
    for tool in ("docker", "zstd", "ssh"):
        assert ee("sh", "-c", f"command -v {tool}").strip(), f"{tool} is not in the EE"


def test_site_yml_from_the_ee_redeploys_a_changed_job_keeps_its_results_then_changes_nothing(
    inventory, tmp_path
):
    inventory["all"]["vars"]["job_epochs"] = 5

    run = run_site_playbook(inventory, tmp_path, ee=True)

    assert run.rc == 0
    assert "ddp: training finished: 5 epochs, final loss" in run.output
    kept = results_of("ddp")
    summary = json.loads((kept / "summary.json").read_text())
    assert summary["state"] == "complete" and summary["world_size"] == 5
    assert summary["metrics"]["epochs_trained"] == list(range(5))
    records = [json.loads(line) for line in (kept / "metrics.jsonl").read_text().splitlines()]
    assert epochs_of(records) == list(range(5))
    for name in ("loss.png", "throughput.png"):
        assert png_size(kept / name) == (800, 450)

    again = run_site_playbook(inventory, tmp_path, ee=True)

    assert again.rc == 0
    again.assert_unchanged("node0", "node1", "node2")
