"""image_stream over real sockets, real pipes and real zstd; only the docker CLI is a stand-in.

The stand-in `docker` is content-addressed, as the engine is: `save` writes the bytes of this
host's image, `load` stores what arrives, and the image's ID is the sha256 of what is stored,
so a stream that loses or changes a byte ends with the wrong ID.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import image_stream

STAND_IN_DOCKER = r"""#!/bin/sh
# STAND-IN docker CLI: one image per "host" directory ($DOCKER_HOST_DIR/image).
case "$1" in
  save) cat "$DOCKER_HOST_DIR/image" ;;
  load) cat > "$DOCKER_HOST_DIR/image.new" && mv "$DOCKER_HOST_DIR/image.new" "$DOCKER_HOST_DIR/image" ;;
  image) [ -f "$DOCKER_HOST_DIR/image" ] || exit 1
         sum="$(sha256sum "$DOCKER_HOST_DIR/image")"; echo "sha256:${sum%% *}" ;;
esac
"""

needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """Two 'hosts' (directories); the sender's holds a 3 MB image. Both ends run in this process,
    so DOCKER_HOST_DIR is chosen per thread by a wrapper of subprocess.Popen (run calls it too)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(STAND_IN_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sender, receiver = tmp_path / "sender", tmp_path / "receiver"
    sender.mkdir()
    receiver.mkdir()
    (sender / "image").write_bytes(os.urandom(1 << 20) + b"layer " * 350_000)
    where = threading.local()
    popen = image_stream.subprocess.Popen

    def env():
        return {**os.environ, "DOCKER_HOST_DIR": str(where.dir)}

    monkeypatch.setattr(image_stream.subprocess, "Popen", lambda *a, **k: popen(*a, **{**k, "env": env()}))
    return where, sender, receiver


def image_id(directory: Path) -> str:
    return "sha256:" + hashlib.sha256((directory / "image").read_bytes()).hexdigest()


def transfer(
    hosts, port, token="t0ken", sent_token="t0ken", compression="none", expected=None, wait=10, timeout=10
):
    where, sender, receiver = hosts
    expected = expected or image_id(sender)
    result = {}

    def receive():
        where.dir = receiver
        try:
            result["received"] = image_stream.receive(
                port, token, expected, "img", compression, wait=wait, timeout=10
            )
        except image_stream.StreamError as e:
            result["receive_error"] = str(e)

    thread = threading.Thread(target=receive)
    thread.start()
    where.dir = sender
    try:
        result["sent"] = image_stream.send(
            "127.0.0.1", port, sent_token, expected, "img", compression, 10, 10
        )
    except image_stream.StreamError as e:
        result["send_error"] = str(e)
    thread.join()
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("compression", ["none", pytest.param("zstd", marks=needs_zstd)])
def test_the_receiver_ends_with_the_same_image_and_both_ends_count_the_bytes(hosts, compression):
    result = transfer(hosts, free_port(), compression=compression)
    _, sender, receiver = hosts
    assert "send_error" not in result and "receive_error" not in result, result
    assert image_id(receiver) == image_id(sender)
    assert result["sent"].bytes == result["received"].bytes
    size = (sender / "image").stat().st_size
    if compression == "zstd":
        assert result["sent"].bytes < size * 0.7  # the repeated layer text compresses
    else:
        assert result["sent"].bytes == size


def test_a_sender_with_the_wrong_token_is_refused_and_the_receiver_keeps_waiting(hosts):
    result = transfer(hosts, free_port(), sent_token="guess", wait=3)
    assert "without an answer" in result["send_error"] or "broke" in result["send_error"]
    assert "wrong token" in result["receive_error"] and "no sender connected" in result["receive_error"]
    assert not (hosts[2] / "image").exists()  # nothing was loaded


def test_an_image_that_loads_with_another_id_fails_on_both_ends(hosts):
    _, sender, _ = hosts
    # The sender's tag points at other content than the ID the controller expects.
    result = transfer(hosts, free_port(), expected=image_id(sender))
    assert "sent" in result
    (sender / "image").write_bytes(b"another image")
    result = transfer(hosts, free_port(), expected="sha256:" + "0" * 64, wait=2)
    assert "not sha256:000" in result["send_error"]  # the sender checks its own copy first


def test_a_silent_connection_first_is_refused_and_the_sender_after_it_gets_through(hosts):
    where, sender, receiver = hosts
    port, expected, seen = free_port(), image_id(sender), {}

    def receive():
        where.dir = receiver
        seen["received"] = image_stream.receive(port, "t0ken", expected, "img", "none", wait=30, timeout=30)

    def hold_silent():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                silent = socket.create_connection(("127.0.0.1", port), timeout=1)
            except OSError:
                time.sleep(0.02)
                continue
            with silent:
                seen["connected"] = True
                silent.settimeout(30)
                seen["closed_by_receiver"] = silent.recv(1) == b""  # it gives up on silence
            return

    threads = [threading.Thread(target=receive), threading.Thread(target=hold_silent)]
    for thread in threads:
        thread.start()
    while "connected" not in seen and threads[1].is_alive():
        time.sleep(0.02)
    where.dir = sender
    # The stream waits in the socket while the receiver gives the squatter 10 s.
    sent = image_stream.send("127.0.0.1", port, "t0ken", expected, "img", "none", 10, 30)
    for thread in threads:
        thread.join()
    assert seen.get("closed_by_receiver"), seen
    assert seen["received"].bytes == sent.bytes
    assert image_id(receiver) == expected
