"""A dataset down a chain of receivers over real TCP connections on this machine: each receiver
(the module's receive end) in a thread, or in a process of its own where the test stops it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _data_chain as data_chain,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _dir_stream as dir_stream,
)
from ansible_collections.torchswarm.ddp.plugins.modules import data_relay
from module_runner import run_module

TOKEN = "t0ken-for-this-run"
COLLECTIONS = Path(__file__).resolve().parents[4] / "collections"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dataset(root: Path) -> tuple[str, list[dict], str]:
    (root / "shards").mkdir(parents=True)
    (root / "shards" / "a.bin").write_bytes(os.urandom(3 * dir_stream.CHUNK + 5))
    (root / "shards" / "b.bin").write_bytes(os.urandom(1000))
    (root / "labels.csv").write_text("id,label\n1,cat\n")
    (root / "empty").write_bytes(b"")
    top, files = data_chain.listing(str(root))
    digest, _unused, _unused = data_chain.digest_with_cache(
        files, None, lambda p: data_chain.file_sha256(str(root / p))
    )
    return top, files, digest


def receiving(dest: Path, port: int, digest: str, forward=(), wait=20, timeout=20):
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = data_chain.receive(
                port, TOKEN, str(dest), digest, list(forward), wait, timeout
            )
        except Exception as e:  # the test reads it
            outcome["error"] = str(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def same_files(a: Path, b: Path) -> bool:
    def files(root):
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    return files(a) == files(b)


def version(root: Path, digest: str) -> Path:
    """Where a host keeps a dataset: below its dataset directory, named by the digest."""
    return root / f"sha256-{digest.removeprefix('sha256:')}"


def local(*ports: int) -> list[tuple[str, int]]:
    return [("127.0.0.1", p) for p in ports]


def test_the_dataset_goes_down_the_chain_each_host_passing_it_on_and_each_copy_is_checked(tmp_path):
    root, files, digest = dataset(tmp_path / "src")
    ports = [free_port() for _unused in range(3)]
    dests = [tmp_path / f"host{i}" / "data" for i in range(3)]
    receivers = [receiving(dests[i], ports[i], digest, local(*ports[i + 1 :])) for i in range(3)]

    sent = data_chain.send(root, files, local(*ports), TOKEN, 20)
    for thread, _unused in receivers:
        thread.join()

    assert sent["sent_to"] == f"127.0.0.1:{ports[0]}" and sent["routed_around"] == []
    assert sent["bytes"] == sum(f["size"] for f in files)
    for i, (_unused, outcome) in enumerate(receivers):
        assert "error" not in outcome, outcome
        assert outcome["result"]["forwarded_to"] == (f"127.0.0.1:{ports[i + 1]}" if i < 2 else "")
        assert same_files(tmp_path / "src", version(dests[i], digest))
        assert data_chain.holds(str(dests[i]), digest)
        assert [p.name for p in dests[i].iterdir()] == [f"sha256-{digest[7:]}"]
    # A host that holds it sends its version directory: the same files, the same digest.
    held_root, held_files = data_chain.listing(str(version(dests[2], digest)))
    again, _unused, _unused = data_chain.digest_with_cache(
        held_files, None, lambda p: data_chain.file_sha256(f"{held_root}/{p}")
    )
    assert again == digest


def test_a_changed_dataset_replaces_the_old_one_whole(tmp_path):
    root, files, digest = dataset(tmp_path / "src")
    dest, port = tmp_path / "host" / "data", free_port()
    thread, _unused = receiving(dest, port, digest)
    data_chain.send(root, files, local(port), TOKEN, 20)
    thread.join()
    (dest / "notes.txt").write_text("the team's own file beside the versions")
    (tmp_path / "src" / "labels.csv").unlink()
    (tmp_path / "src" / "new.txt").write_text("new")
    root, files, new_digest = dataset_again(tmp_path / "src")

    thread, outcome = receiving(dest, port, new_digest)
    data_chain.send(root, files, local(port), TOKEN, 20)
    thread.join()

    assert "error" not in outcome, outcome
    new = version(dest, new_digest)
    assert not (new / "labels.csv").exists() and (new / "new.txt").read_text() == "new"
    assert data_chain.holds(str(dest), new_digest) and not data_chain.holds(str(dest), digest)
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt", new.name]  # the old version went


def dataset_again(root: Path):
    top, files = data_chain.listing(str(root))
    digest, _unused, _unused = data_chain.digest_with_cache(
        files, None, lambda p: data_chain.file_sha256(str(root / p))
    )
    return top, files, digest


def test_a_host_that_does_not_answer_is_routed_around(tmp_path):
    root, files, digest = dataset(tmp_path / "src")
    first, dead, last = free_port(), free_port(), free_port()
    a = receiving(tmp_path / "a", first, digest, local(dead, last))
    c = receiving(tmp_path / "c", last, digest)

    data_chain.send(root, files, local(first, dead, last), TOKEN, 20)
    a[0].join()
    c[0].join()

    assert "error" not in a[1] and "error" not in c[1], (a[1], c[1])
    assert a[1]["result"]["forwarded_to"] == f"127.0.0.1:{last}"
    assert f"127.0.0.1:{dead} (cannot connect" in a[1]["result"]["routed_around"][0]
    assert same_files(tmp_path / "src", version(tmp_path / "c", digest))


def test_a_stalled_host_is_routed_around_and_the_hosts_after_it_get_the_copy_before_it(tmp_path, monkeypatch):
    """The middle receiver is a real process, stopped (SIGSTOP) once it listens: its kernel still
    accepts the connection, and then nothing more comes from it."""
    monkeypatch.setattr(data_chain, "STALL_STEP", 1)
    root, files, digest = dataset(tmp_path / "src")
    first, stalled, last = free_port(), free_port(), free_port()
    dest, forward = str(tmp_path / "b"), [("127.0.0.1", last)]
    code = (
        "from ansible_collections.torchswarm.ddp.plugins.module_utils import _data_chain as data_chain;"
        f"data_chain.receive({stalled}, {TOKEN!r}, {dest!r}, {digest!r}, {forward!r}, 60, 60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(COLLECTIONS)})
    try:
        deadline = time.monotonic() + 20
        while not listening(stalled):
            assert time.monotonic() < deadline and proc.poll() is None, "the receiver did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGSTOP)
        a = receiving(tmp_path / "a", first, digest, local(stalled, last), timeout=2)
        c = receiving(tmp_path / "c", last, digest, timeout=2)

        data_chain.send(root, files, local(first, stalled, last), TOKEN, 2)
        a[0].join()
        c[0].join()
    finally:
        proc.kill()
        proc.wait()

    assert "error" not in a[1] and "error" not in c[1], (a[1], c[1])
    routed = a[1]["result"]["routed_around"]
    assert len(routed) == 1 and routed[0].startswith(f"127.0.0.1:{stalled} (no answer: timed out"), routed
    assert same_files(tmp_path / "src", version(tmp_path / "a", digest))
    assert same_files(tmp_path / "src", version(tmp_path / "c", digest))
    assert c[1]["result"]["peer"] == "127.0.0.1" and data_chain.holds(str(tmp_path / "c"), digest)


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_dataset_whose_digest_is_not_the_expected_one_is_refused_and_nothing_counts(tmp_path):
    root, files, digest = dataset(tmp_path / "src")
    dest, port = tmp_path / "host" / "data", free_port()
    other = "sha256:" + "0" * 64
    thread, outcome = receiving(dest, port, other)

    with pytest.raises(dir_stream.DirRefused, match="refused") as refused:
        data_chain.send(root, files, local(port), TOKEN, 20)
    thread.join()

    assert f"the dataset that arrived is {digest}, expected {other}" in outcome["error"]
    assert str(refused.value).startswith(f"127.0.0.1:{port}: the receiver refused the files: the dataset")
    assert list(dest.iterdir()) == []  # nothing that counts, and no incoming left behind


def test_the_digest_reads_again_only_the_files_whose_size_or_time_changed(tmp_path):
    root = tmp_path / "src"
    _unused, files, digest = dataset(root)
    reads: list[str] = []

    def sha(path: str) -> str:
        reads.append(path)
        return data_chain.file_sha256(str(root / path))

    first, entry, _unused = data_chain.digest_with_cache(files, None, sha)
    assert first == digest and sorted(reads) == sorted(f["path"] for f in files)
    # Same sizes and times: nothing read, even where the bytes changed (what the cache trusts).
    stat = os.stat(root / "labels.csv")
    (root / "labels.csv").write_text("id,label\n1,dog\n")
    os.utime(root / "labels.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reads.clear()
    again, _unused, read = data_chain.digest_with_cache(data_chain.listing(str(root))[1], entry, sha)
    assert again == digest and reads == [] and read == []
    # A new modification time: that file, and only it, is read again.
    os.utime(root / "labels.csv")
    changed, _unused, read = data_chain.digest_with_cache(data_chain.listing(str(root))[1], entry, sha)
    assert read == reads == ["labels.csv"] and changed != digest


def test_a_single_file_is_a_dataset_of_one(tmp_path):
    (tmp_path / "train.bin").write_bytes(b"x" * 10)
    root, files = data_chain.listing(str(tmp_path / "train.bin"))
    assert root == str(tmp_path) and [f["path"] for f in files] == ["train.bin"]


def test_after_a_stream_that_broke_off_the_host_waits_for_a_sender_until_its_limit(tmp_path):
    """The host before a failed one sends its own copy once that copy is complete, which can be
    long after the break: here later than ``wait`` after it, within ``limit``. The receiver is
    the module itself, so its ``limit`` option is what reaches the chain."""
    root, files, digest = dataset(tmp_path / "src")
    dest, port = tmp_path / "host", free_port()
    outcome: dict = {}
    args = {"mode": "receive", "path": str(dest), "digest": digest, "token": TOKEN, "port": port}

    def run() -> None:
        result, failed = run_module(data_relay.main, {**args, "wait": 1, "timeout": 5, "limit": 30})
        outcome["error" if failed else "result"] = result

    thread = threading.Thread(target=run)
    thread.start()
    broken = dir_stream.connect("127.0.0.1", port, TOKEN, 10, 5)
    broken.sendall(json.dumps({"files": [{"path": "a.bin", "size": 1000}]}).encode() + b"\n")
    assert dir_stream.read_line(broken) == b"GO\n"
    broken.sendall(b"x" * 10)
    broken.close()  # the sender went away mid-file
    time.sleep(3)  # longer than wait

    sent = data_chain.send(root, files, local(port), TOKEN, 20)
    thread.join()

    assert "error" not in outcome, outcome
    assert sent["sent_to"] == f"127.0.0.1:{port}" and data_chain.holds(str(dest), digest)
    assert [p.name for p in dest.iterdir()] == [f"sha256-{digest[7:]}"]  # the broken one left nothing
