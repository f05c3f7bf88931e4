"""Stream an image between two Docker engines over one TCP connection, checked by its ID.

The sender runs ``docker save`` (and zstd) into the socket; the receiver runs the socket into
(zstd -d and) ``docker load``. Nothing is written to disk on either side but what docker load
itself stores. The protocol lines come from fanout.py.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass

from ansible_collections.torchswarm.ddp.plugins.module_utils import fanout

CHUNK = 1 << 20


class StreamError(Exception):
    """A transfer that did not end with the receiver holding the expected image ID."""


@dataclass
class Transfer:
    bytes: int
    seconds: float
    peer: str

    def as_dict(self) -> dict:
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return {
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
            "mb_per_s": round(rate, 1),
            "peer": self.peer,
        }


def image_id(image: str) -> str | None:
    """The ID the local engine gives ``image``, or None when it has no such image."""
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def _pipeline(commands: list[list[str]], stdin=None, stdout=None) -> list[subprocess.Popen]:
    """Start commands piped into each other; the first reads ``stdin``, the last writes ``stdout``."""
    procs: list[subprocess.Popen] = []
    for i, argv in enumerate(commands):
        last = i == len(commands) - 1
        try:
            proc = subprocess.Popen(
                argv,
                stdin=procs[-1].stdout if procs else stdin,
                stdout=stdout if last else subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError as e:
            hint = " (install it, or set compression none: image_compression in the image role)"
            raise StreamError(
                f"{argv[0]} is not installed on this host{hint if argv[0] == 'zstd' else ''}"
            ) from e
        if procs:
            procs[-1].stdout.close()  # the next command owns it now
        procs.append(proc)
    return procs


def _finish(procs: list[subprocess.Popen]) -> str | None:
    """Wait for a pipeline; the first failing command and its stderr, or None."""
    problem = None
    for proc in procs:
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        if proc.wait() != 0 and problem is None:
            problem = f"{proc.args[0]} {proc.args[1]} exited {proc.returncode}: {err[-400:]}"
    return problem


def _stop(procs: list[subprocess.Popen]) -> None:
    """Kill a pipeline whose stream broke; its output no longer matters."""
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _read_line(conn: socket.socket, limit: int) -> bytes:
    """One line, read a byte at a time so that nothing after it is consumed."""
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return line


def receive(
    port: int, token: str, expected_id: str, image: str, compression: str, wait: float, timeout: float
):
    """Accept the first sender that presents ``token`` within ``wait`` seconds, load its stream
    and answer it; returns the Transfer, raises StreamError when the image is not ``expected_id``.
    """
    server = socket.create_server(("", port), reuse_port=False)
    try:
        return _serve_one(server, token, expected_id, image, compression, wait, timeout)
    finally:
        server.close()


def _serve_one(server, token, expected_id, image, compression, wait, timeout):
    deadline = time.monotonic() + wait
    refused: list[str] = []
    while True:
        server.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            conn, (peer, _) = server.accept()
        except TimeoutError as e:
            seen = f" (refused: {', '.join(refused)})" if refused else ""
            raise StreamError(f"no sender connected within {wait:.0f} s{seen}") from e
        with conn:
            # A connection that says nothing (a port scan) is refused like a wrong header.
            conn.settimeout(min(timeout, 10))
            try:
                line = _read_line(conn, fanout.HEADER_LIMIT)
            except OSError as e:
                refused.append(f"{peer}: {e}")
                continue
            conn.settimeout(timeout)
            problem = fanout.header_problem(line, token, compression)
            if problem:
                refused.append(f"{peer}: {problem}")
                continue
            start = time.monotonic()
            received, problem = _load(conn, compression)
            loaded = image_id(image)
            if problem is None and loaded != expected_id:
                problem = f"after docker load, {image} is {loaded or 'missing'}, expected {expected_id}"
            conn.sendall(fanout.reply(loaded, problem))
            if problem:
                raise StreamError(problem)
            return Transfer(received, time.monotonic() - start, peer)


def _load(conn: socket.socket, compression: str) -> tuple[int, str | None]:
    procs = _pipeline(fanout.load_commands(compression), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    received = 0
    try:
        while chunk := conn.recv(CHUNK):
            procs[0].stdin.write(chunk)
            received += len(chunk)
    except BrokenPipeError:
        pass  # the loader stopped early: its exit status says why
    except OSError as e:
        _stop(procs)
        return received, f"the stream broke after {received} bytes: {e}"
    finally:
        with contextlib.suppress(BrokenPipeError):
            procs[0].stdin.close()
    return received, _finish(procs)


def send(
    address: str, port: int, token: str, expected_id: str, image: str, compression: str, wait: float, timeout
):
    """Stream ``image`` to a receiver at ``address``:``port`` (retrying the connection for up to
    ``wait`` seconds while it starts listening) and wait for its answer."""
    have = image_id(image)
    if have != expected_id:
        raise StreamError(f"this host's {image} is {have or 'missing'}, not {expected_id}")
    conn = _connect(address, port, wait)
    with conn:
        conn.settimeout(timeout)
        start = time.monotonic()
        conn.sendall(fanout.header(token, compression))
        procs = _pipeline(fanout.save_commands(image, compression), stdout=subprocess.PIPE)
        sent = 0
        try:
            while chunk := procs[-1].stdout.read(CHUNK):
                conn.sendall(chunk)
                sent += len(chunk)
        except OSError as e:
            _stop(procs)
            raise StreamError(
                f"sending to {address}:{port} broke after {sent} bytes: {e}{_last_word(conn)}"
            ) from e
        problem = _finish(procs)
        if problem:
            raise StreamError(problem)
        conn.shutdown(socket.SHUT_WR)
        problem = fanout.reply_problem(_read_line(conn, 4096), expected_id)
        if problem:
            raise StreamError(f"{address}:{port}: {problem}")
        return Transfer(sent, time.monotonic() - start, address)


def _last_word(conn: socket.socket) -> str:
    """What a receiver that hung up said before it did, if anything."""
    try:
        conn.settimeout(2)
        line = _read_line(conn, 4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" (the receiver said: {line})" if line else ""


def _connect(address: str, port: int, wait: float) -> socket.socket:
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection((address, port), timeout=10)
        except OSError as e:
            if time.monotonic() >= deadline:
                raise StreamError(f"cannot connect to {address}:{port} within {wait:.0f} s: {e}") from e
            time.sleep(0.5)
