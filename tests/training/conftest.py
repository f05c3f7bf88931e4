"""Run the trainer the way the guide does: through torchrun, as separate processes, on CPU/gloo."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[2] / "training"
sys.path.insert(0, str(TRAINING))

from torchswarm import processes  # noqa: E402  (the image's package, on the path above)


def free_port() -> int:
    """A port free now and below the kernel's ephemeral range (32768-60999), from which the
    system hands out the source ports of connections: a port picked in that range could be some
    rank's connection by the time a store or torchrun binds it (EADDRINUSE, seen in a run)."""
    while True:
        port = random.randrange(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


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
    out, _unused = proc.communicate(timeout=timeout)
    print(out)  # shown when a test fails
    return proc.returncode, out


def kill_tree(pid: int, signum: int = signal.SIGKILL) -> None:
    """SIGKILL torchrun and its workers at once, as a node dying would (or SIGSTOP them all: a
    host that vanished without closing a connection)."""
    processes.signal_all(processes.tree(pid), signum)


def running(text: str) -> dict[int, str]:
    """The processes whose command line holds ``text`` (a test's script path), by PID."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in line and int(cmdline.parent.name) != os.getpid():
                found[int(cmdline.parent.name)] = line
    return found


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


FIRST_STEP = re.compile(r"first step trained at ([0-9.]+) \(world size (\d+)\)")


def first_steps_after(log: str, moment: float) -> list[tuple[float, int]]:
    """(wall time, world size) of each round's first step after ``moment`` (the trainer's line)."""
    return [(float(t), int(w)) for t, w in FIRST_STEP.findall(log) if float(t) > moment]


class Cluster:
    def __init__(
        self,
        tmp_path: Path,
        epochs: int,
        nodes: int = 3,
        min_nodes: int = 2,
        extra: tuple[str, ...] = (),
        script: str = "training_code.py",
        env: dict[str, str] | None = None,
    ) -> None:
        self.tmp_path, self.epochs, self.nodes, self.min_nodes = tmp_path, epochs, nodes, min_nodes
        self.extra = extra  # more trainer arguments
        self.script = script
        self.env = env or {}  # more for every launcher
        self.store_port, self.master_port = free_port(), free_port()
        self.store = subprocess.Popen(
            [sys.executable, "-m", "torchswarm.store", str(self.store_port)], cwd=TRAINING
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def snapdir(self, name: str) -> Path:
        return self.tmp_path / name

    def start(self, order: int, peer_timeout: str = "5") -> None:
        name = f"node{order}"
        command = [
            sys.executable,
            "-m",
            "torchswarm.launcher",
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=1",
            f"--nnodes={self.nodes}",
            f"--node_rank={order}",
            "--master_addr=127.0.0.1",
            f"--master_port={self.master_port}",
            self.script,
            str(self.epochs),
            "1",
            "--dataset_size",
            "32768",
            *self.extra,
        ]
        env = {
            "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
            "TORCHSWARM_GENERATION": "elastic01",
            "TORCHSWARM_SNAPSHOT_DIR": str(self.snapdir(name)),
            "TORCHSWARM_RENDEZVOUS": f"127.0.0.1:{self.store_port}",
            "TORCHSWARM_NODE": name,
            "TORCHSWARM_NODE_ADDR": "127.0.0.1",
            "TORCHSWARM_NODE_ORDER": str(order),
            "TORCHSWARM_MIN_NODES": str(self.min_nodes),
            "TORCHSWARM_MAX_NODES": str(self.nodes),
            "TORCHSWARM_PEER_TIMEOUT": peer_timeout,
            "TORCHSWARM_LAST_CALL": "2",
            **self.env,
        }
        log = self.tmp_path / f"{name}-{len(self.logs)}.log"
        self.logs[name] = log
        self.procs[name] = subprocess.Popen(
            command,
            cwd=TRAINING,
            env={**os.environ, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def restart_store(self) -> None:
        """The store's host died and the swarm started it elsewhere: empty, same name."""
        self.store.kill()
        self.store.wait()
        self.store = subprocess.Popen(
            [sys.executable, "-m", "torchswarm.store", str(self.store_port)], cwd=TRAINING
        )

    def close(self) -> None:
        for proc in self.procs.values():
            kill_tree(proc.pid, signal.SIGCONT)
            kill_tree(proc.pid)
            proc.wait()
        # Workers a launcher left behind (what test_elastic's stall checks look for): not into the next test.
        processes.signal_all(list(running(str(self.tmp_path))))
        self.store.kill()
        self.store.wait()


@pytest.fixture
def snapdir(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"
