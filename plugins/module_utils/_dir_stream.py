"""Stream a directory's files over one TCP connection, each file checked by its sha256.

Either end may be the one that listens: for a run's output, the node that holds the files
listens and the controller connects (as the image role's senders connect to the nodes). On the
connection, after the connecting end's header line (magic, version, token):

    sender   -> receiver  {"files": [{"path": "model.pt", "size": 123}, ...]}\\n
    receiver -> sender    GO\\n, or SKIP <why>\\n (more than it may take)
    sender   -> receiver  each file's bytes, in the order of the list
    sender   -> receiver  {"sha256": {"model.pt": "<hex>", ...}}\\n
    receiver -> sender    OK\\n, or BAD <why>\\n

Both ends hash the bytes as they pass, so nothing is read twice or held in memory; the receiver
writes into a directory of its own beside ``dest`` and moves the files into ``dest`` only once
every digest matched, so a broken transfer leaves nothing that looks complete.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import tempfile
import time

from ansible_collections.torchswarm.ddp.plugins.module_utils import _tcp as tcp

MAGIC = "TORCHSWARM-DIR"
VERSION = 1
CHUNK = 1 << 20
LINE_LIMIT = 4 << 20  # the file list of a directory of a few ten thousand files


class DirStreamError(tcp.TransferError):
    """A transfer that did not end with the receiver holding every file, checked."""


class DirRefused(DirStreamError):
    """An end that refused the files for good (digests that differ, no room): sending them again
    would not help."""


def files_of(root: str) -> list[dict]:
    """The regular files below ``root`` (symlinks left out), by relative path in sorted order,
    with their sizes; none when ``root`` does not exist."""
    found = []
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found.append({"path": os.path.relpath(path, root), "size": os.path.getsize(path)})
    return found


def safe_relative(path: object) -> bool:
    """A relative path that stays below the directory it is joined to."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        return False
    return ".." not in path.split("/") and os.path.normpath(path) == path


def header(token: str) -> bytes:
    return f"{MAGIC} {VERSION} {token}\n".encode()


def header_problem(line: bytes, token: str) -> str | None:
    """Why a listening end must refuse a connection whose first line is ``line``."""
    parts = line.decode("ascii", "replace").strip().split(" ")
    if len(parts) != 3 or parts[0] != MAGIC:
        return "not a torchswarm directory stream"
    if parts[1] != str(VERSION):
        return f"protocol version {parts[1]}, this end speaks {VERSION}"
    if not hmac.compare_digest(parts[2].encode(), token.encode()):
        return "wrong token"
    return None


def read_line(conn: socket.socket, limit: int = LINE_LIMIT) -> bytes:
    """One protocol line; DirStreamError when it runs past ``limit`` bytes."""
    line = tcp.read_line(conn, limit)
    if len(line) >= limit and not line.endswith(b"\n"):
        raise DirStreamError(f"a protocol line longer than {limit} bytes")
    return line


def parse_line(line: bytes, what: str) -> dict:
    """A protocol line's JSON object; DirStreamError naming ``what`` when it is none."""
    try:
        value = json.loads(line)
    except ValueError as e:
        raise DirStreamError(f"the other end sent no {what} ({line[:80]!r})") from e
    if not isinstance(value, dict):
        raise DirStreamError(f"the other end sent no {what}")
    return value


def json_line(conn: socket.socket, what: str) -> dict:
    return parse_line(read_line(conn), what)


def send_dir(conn: socket.socket, root: str, files: list[dict] | None = None, progress=None) -> dict:
    """The sending end, on a connection whose header was checked: the files below ``root``
    (``files``, paths relative to it with sizes; default, all of them); ``progress``, if given,
    is called with the bytes sent so far after each chunk, and with ``last=True`` once every byte
    is sent, while the receiver checks them.
    Returns {"files": [...with sha256], "bytes": n, "skipped": why or None}."""
    files = files_of(root) if files is None else [{"path": f["path"], "size": f["size"]} for f in files]
    conn.sendall(json.dumps({"files": files}).encode() + b"\n")
    answer = read_line(conn, 4096).decode("utf-8", "replace").strip()
    if answer.startswith("SKIP"):
        return {"files": files, "bytes": 0, "skipped": answer[4:].strip() or "the receiver took none"}
    if answer != "GO":
        raise DirStreamError(f"the receiver answered the file list with {answer[:200]!r}")
    digests, sent = {}, 0
    for entry in files:
        digest, left = hashlib.sha256(), entry["size"]
        with open(os.path.join(root, entry["path"]), "rb") as handle:
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    raise DirStreamError(f"{entry['path']} shrank while it was sent")
                conn.sendall(chunk)
                digest.update(chunk)
                left -= len(chunk)
                sent += len(chunk)
                if progress:
                    progress(sent)
        digests[entry["path"]] = digest.hexdigest()
    conn.sendall(json.dumps({"sha256": digests}).encode() + b"\n")
    if progress:
        progress(sent, last=True)
    verdict = read_line(conn, 4096).decode("utf-8", "replace").strip()
    if verdict.startswith("BAD"):
        raise DirRefused(f"the receiver refused the files: {verdict[3:].strip()}")
    if verdict != "OK":
        raise DirStreamError(f"the receiver did not take the files: {verdict or 'no answer'}")
    return {"files": [{**e, "sha256": digests[e["path"]]} for e in files], "bytes": sent, "skipped": None}


def file_list(message: dict) -> list[dict]:
    """The files a sender's list names, each checked to stay below the directory, with a size."""
    files = message.get("files")
    if not isinstance(files, list) or not all(
        isinstance(e, dict)
        and safe_relative(e.get("path"))
        and isinstance(e.get("size"), int)
        and e["size"] >= 0
        for e in files
    ):
        raise DirStreamError("the file list names a path outside the directory, or no sizes")
    return files


def receive_dir(conn: socket.socket, dest: str, max_bytes: int) -> dict:
    """The receiving end, on a connection whose header was checked: the files into ``dest``
    (made; files of the same names replaced), unless they hold more than ``max_bytes``.
    Returns {"files": [...with sha256], "bytes": n, "skipped": why or None}."""
    files = file_list(json_line(conn, "file list"))
    total = sum(e["size"] for e in files)
    if total > max_bytes:
        why = f"{len(files)} files of {total} bytes, more than the {max_bytes} it may take"
        conn.sendall(f"SKIP {why}\n".encode())
        return {"files": files, "bytes": 0, "skipped": why}
    conn.sendall(b"GO\n")
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    incoming = tempfile.mkdtemp(prefix=".incoming-", dir=parent)
    try:
        digests = {e["path"]: receive_file(conn, os.path.join(incoming, e["path"]), e["size"]) for e in files}
        sent = json_line(conn, "digests").get("sha256")
        if sent != digests:
            bad = sorted(p for p in digests if not isinstance(sent, dict) or sent.get(p) != digests[p])
            conn.sendall(f"BAD digests differ for {', '.join(bad[:5])}\n".encode())
            raise DirStreamError(f"the digests of {', '.join(bad[:5])} differ from the sender's")
        for entry in files:
            target = os.path.join(dest, entry["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(incoming, entry["path"]), target)
        conn.sendall(b"OK\n")
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return {"files": [{**e, "sha256": digests[e["path"]]} for e in files], "bytes": total, "skipped": None}


def receive_file(conn: socket.socket, path: str, size: int, tee=None) -> str:
    """``size`` bytes from ``conn`` into the file ``path`` (each chunk also to ``tee``); their sha256."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    digest, left = hashlib.sha256(), size
    with open(path, "wb") as handle:
        while left > 0:
            chunk = conn.recv(min(CHUNK, left))
            if not chunk:
                raise DirStreamError(f"the stream ended {left} bytes before the end of {path}")
            handle.write(chunk)
            if tee:
                tee(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def connect(address: str, port: int, token: str, wait: float, timeout: float) -> socket.socket:
    """A connection to the listening end (retried for ``wait`` seconds while it starts), its
    header sent."""
    conn = tcp.connect(address, port, wait, DirStreamError)
    conn.settimeout(timeout)
    conn.sendall(header(token))
    return conn


def accept(port: int, token: str, wait: float, timeout: float) -> tuple[socket.socket, str]:
    """The first connection within ``wait`` seconds that presents ``token``, and its peer."""
    refused: list[str] = []
    with socket.create_server(("", port)) as server:
        try:
            return tcp.accept(
                server, time.monotonic() + wait, timeout, lambda line: header_problem(line, token), refused
            )
        except TimeoutError as e:
            raise DirStreamError(f"nobody connected within {wait:.0f} s{tcp.refusals(refused)}") from e
