"""What the collection's TCP transfers share (the image relay, the run's output, the staged
dataset): a line read without consuming what follows it, a connection retried while the other
end starts listening, and the first connection whose header line a check accepts."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class TransferError(Exception):
    """A connection that could not be made or accepted; each transfer's own error derives from it."""


def read_line(conn: socket.socket, limit: int) -> bytes:
    """One line (at most ``limit`` bytes: a longer one comes back cut, for the caller's parser to
    refuse), read a byte at a time so that nothing after it is consumed."""
    line = bytearray()
    while not line.endswith(b"\n") and len(line) < limit:
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def connect(address: str, port: int, wait: float, error: type[Exception] = TransferError) -> socket.socket:
    """A connection to ``address``:``port``, retried for ``wait`` seconds while it starts
    listening; ``error`` (with the last reason) when none was made."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection((address, port), timeout=10)
        except OSError as e:
            if time.monotonic() >= deadline:
                raise error(f"cannot connect to {address}:{port} within {wait:.0f} s: {e}") from e
            time.sleep(0.5)


def accept(
    server: socket.socket,
    deadline: float,
    timeout: float,
    check: Callable[[bytes], str | None],
    refused: list[str],
    header_limit: int = 512,
) -> tuple[socket.socket, str]:
    """The first connection to ``server`` before ``deadline`` (monotonic) whose header line
    ``check`` accepts (it returns why not, or None), and its peer; its timeout is then
    ``timeout``. Each connection refused on the way is added to ``refused`` (one that says
    nothing, a port scan, after at most 10 s); TimeoutError at the deadline."""
    while True:
        server.settimeout(max(deadline - time.monotonic(), 0.01))
        conn, (peer, _unused) = server.accept()
        conn.settimeout(min(timeout, 10))
        try:
            problem = check(read_line(conn, header_limit))
        except OSError as e:
            problem = str(e)
        if problem is None:
            conn.settimeout(timeout)
            return conn, peer
        refused.append(f"{peer}: {problem}")
        conn.close()


def refusals(refused: list[str]) -> str:
    """The connections accept() refused, for an error message."""
    return f" (refused: {', '.join(refused)})" if refused else ""
