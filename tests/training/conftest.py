"""Run the trainer the way the guide does: through torchrun, as separate processes, on CPU/gloo."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[2] / "training"
sys.path.insert(0, str(TRAINING))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(
    trainer_args: list[str],
    *,
    nproc: int = 2,
    nnodes: int = 1,
    node_rank: int = 0,
    port: int | None = None,
    torchrun_args: tuple[str, ...] = (),
    script: str = "training_code.py",
    entrypoint: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """torchrun as the guide runs it; with ``entrypoint``, through the image's launcher."""
    if nnodes == 1:
        placement = ["--standalone"]
    else:
        placement = [f"--nnodes={nnodes}", f"--node_rank={node_rank}", "--master_addr=127.0.0.1"]
        placement.append(f"--master_port={port}")
    cmd = [
        *([sys.executable, "-m", "torchswarm.launcher"] if entrypoint else []),
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        *placement,
        *torchrun_args,
        script,
        *trainer_args,
    ]
    return subprocess.Popen(
        cmd,
        cwd=TRAINING,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a test can kill torchrun and workers
    )


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    print(out)  # shown when a test fails
    return proc.returncode, out


def kill_tree(pid: int) -> None:
    """SIGKILL torchrun and its workers at once, as a node dying would. torchrun puts its
    workers in sessions of their own, so killing its process group is not enough."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def metrics(snapshot_dir: Path) -> list[dict]:
    path = snapshot_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epochs_of(records: list[dict]) -> list[int]:
    return [r["epoch"] for r in records if r["event"] == "epoch"]


def wait_for(predicate, timeout: float = 120, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@pytest.fixture
def snapdir(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"
