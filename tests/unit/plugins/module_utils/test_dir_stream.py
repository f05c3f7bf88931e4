"""A run's output directory from a node to the controller over a real TCP connection on this
machine: the node's end (training_output serve) in a thread, the controller's (fetch) here."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _dir_stream as dir_stream
from ansible_collections.torchswarm.ddp.plugins.modules import training_output
from module_runner import run_module

TOKEN = "t0ken-for-this-run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(root, port: int, **overrides) -> tuple[threading.Thread, dict]:
    """The node's end, as the module runs it, in a thread; its result or error in the dict."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = training_output.serve(
                {"port": port, "token": TOKEN, "path": str(root), "wait": 20, "timeout": 20, **overrides}
            )
        except Exception as e:  # the test reads it
            outcome["error"] = str(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def output_dir(tmp_path):
    root = tmp_path / "node" / "output" / "3f2a9c0d1e4b5a67"
    (root / "checkpoints").mkdir(parents=True)
    (root / "model.pt").write_bytes(os.urandom(3 * dir_stream.CHUNK + 17))  # more than a chunk
    (root / "checkpoints" / "best.pt").write_bytes(b"best")
    (root / "empty.txt").write_bytes(b"")
    (root / "link").symlink_to("/etc/passwd")  # not a file of the output: left out
    return root


def fetch_args(tmp_path, port: int, **overrides) -> dict:
    return {
        "mode": "fetch",
        "address": "127.0.0.1",
        "port": port,
        "token": TOKEN,
        "dest": str(tmp_path / "results"),
        "name": "ddp",
        "run": "3f2a9c0d1e4b5a67",
        "wait": 20,
        **overrides,
    }


def test_every_file_arrives_in_the_runs_results_with_its_size_and_sha256(tmp_path):
    root, port = output_dir(tmp_path), free_port()
    thread, served = serving(root, port)
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()

    assert not failed, result
    out = tmp_path / "results" / "ddp" / "3f2a9c0d1e4b5a67" / "output"
    assert result["path"] == str(out) and result["changed"] and result["skipped"] is None
    expected = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    assert {f["path"]: f["sha256"] for f in result["files"]} == expected
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == set(expected)
    for path in expected:
        assert (out / path).read_bytes() == (root / path).read_bytes()
    assert result["bytes"] == served["result"]["bytes"] == sum(os.path.getsize(root / p) for p in expected)
    assert served["result"]["peer"] == "127.0.0.1"
    assert not [
        p for p in (tmp_path / "results" / "ddp" / "3f2a9c0d1e4b5a67").iterdir() if p.name.startswith(".")
    ]


def test_more_than_the_limit_is_left_on_the_node_and_said(tmp_path):
    root, port = output_dir(tmp_path), free_port()
    thread, served = serving(root, port)
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port, max_bytes=1024))
    thread.join()

    assert not failed and not result["changed"]
    assert (
        result["skipped"].startswith("3 files of ") and "more than the 1024 it may take" in result["skipped"]
    )
    assert not (tmp_path / "results" / "ddp" / "3f2a9c0d1e4b5a67" / "output").exists()
    assert served["result"]["skipped"] == result["skipped"] and served["result"]["bytes"] == 0


def test_a_missing_output_directory_is_an_empty_one(tmp_path):
    port = free_port()
    thread, _unused = serving(tmp_path / "nothing-here", port)
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()
    assert not failed and result["files"] == [] and result["bytes"] == 0


def test_a_wrong_token_is_refused_and_the_node_waits_for_the_right_one(tmp_path):
    root, port = output_dir(tmp_path), free_port()
    thread, _unused = serving(root, port)
    wrong, failed = run_module(training_output.main, fetch_args(tmp_path, port, token="guessed"))
    assert failed and "sent no file list" in wrong["msg"]
    right, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()
    assert not failed and len(right["files"]) == 3


def fake_sender(port: int, files: list[dict], payload: bytes, digests: dict) -> tuple[threading.Thread, dict]:
    """A sender that lies: its files' bytes or digests are not what it says."""
    said: dict = {}

    def run() -> None:
        conn, _unused = dir_stream.accept(port, TOKEN, 20, 20)
        with conn:
            conn.sendall(json.dumps({"files": files}).encode() + b"\n")
            said["go"] = dir_stream.read_line(conn)
            if said["go"] == b"GO\n":
                conn.sendall(payload + json.dumps({"sha256": digests}).encode() + b"\n")
                said["verdict"] = dir_stream.read_line(conn)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, said


def test_a_file_whose_digest_differs_is_refused_and_nothing_lands(tmp_path):
    port = free_port()
    thread, said = fake_sender(port, [{"path": "model.pt", "size": 4}], b"abcd", {"model.pt": "0" * 64})
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()
    assert failed and "the digests of model.pt differ from the sender's" in result["msg"]
    assert said["verdict"].startswith(b"BAD")
    run_dir = tmp_path / "results" / "ddp" / "3f2a9c0d1e4b5a67"
    assert not (run_dir / "output").exists() and list(run_dir.iterdir()) == []


@pytest.mark.parametrize("path", ["../escape.pt", "/etc/cron.d/x", "a/../../b", ""])
def test_a_file_list_that_leaves_the_directory_is_refused_before_a_byte_is_written(tmp_path, path):
    port = free_port()
    thread, said = fake_sender(port, [{"path": path, "size": 1}], b"x", {path: "0" * 64})
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()
    assert failed and "names a path outside the directory" in result["msg"]
    assert not (tmp_path / "results").exists() and not (tmp_path / "escape.pt").exists()
    assert said["go"] == b""  # the receiver hung up without a word


def test_the_token_never_appears_in_what_the_module_returns(tmp_path):
    root, port = output_dir(tmp_path), free_port()
    thread, _unused = serving(root, port)
    result, failed = run_module(training_output.main, fetch_args(tmp_path, port))
    thread.join()
    assert not failed and TOKEN not in json.dumps(result)


def test_a_protocol_line_past_its_limit_is_refused_not_cut():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"x" * 100)
        with pytest.raises(dir_stream.DirStreamError, match="a protocol line longer than 64 bytes"):
            dir_stream.read_line(ours, 64)
        theirs.sendall(b"y\n")
        assert dir_stream.read_line(ours, 64) == b"x" * 36 + b"y\n"  # what follows is still there
