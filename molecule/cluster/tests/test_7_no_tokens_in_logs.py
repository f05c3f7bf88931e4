"""The join tokens never reach output or logs, from the first converge on: molecule ran it at
-vvv with ANSIBLE_LOG_PATH and the log_plays callback (molecule.yml), so every line Ansible
showed or logged, init and joins included, is on disk to search."""

from __future__ import annotations

import os
from pathlib import Path

from harness import node

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))


def logged_files() -> list[Path]:
    files = [EPHEMERAL / "ansible.log", *sorted((EPHEMERAL / "log_plays").glob("*"))]
    return [f for f in files if f.is_file()]


def test_the_first_converge_logged_no_join_token():
    files = logged_files()
    names = [f.name for f in files]
    assert "ansible.log" in names and {"node0", "node1", "node2"} <= set(names), names
    text = "\n".join(f.read_text(errors="replace") for f in files)
    assert "Using module file" in text, "the converge did not run at -vvv"
    assert "TASK [torchswarm.ddp.swarm : Initialise the swarm (output hidden" in text  # the init was logged
    assert "TASK [torchswarm.ddp.swarm : Join the swarm (output hidden" in text
    tokens = [
        node("node0").check_output(f"docker swarm join-token -q {kind}") for kind in ("worker", "manager")
    ]
    assert all(t.startswith("SWMTKN-") for t in tokens)
    assert "SWMTKN-" not in text
