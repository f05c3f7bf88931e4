"""A dataset from the controller onto every training host (job_data_src), down a chain.

The controller sends the files to the first host that lacks them; each host writes them and
passes each chunk on to the next host as it arrives (the directory stream of dir_stream.py,
forwarded byte for byte), so N hosts hold the dataset in about one transfer's time plus a short
delay per hop, and each link carries it once. A host counts only once the digest of what it
received (``manifest_digest``) is the controller's; it then holds the files in its directory,
with a marker naming that digest (``MARKER``), which the next run reads to send nothing.

Routing around: a host down the chain that does not answer is skipped (the hop goes to the one
after it); one that fails or stalls mid-stream is dropped, and the host before it, once its own
copy is complete, sends that copy on to the hosts after the failed one, which went back to
listening when their stream broke. The failed host itself fails, naming why.

A sender that waits on a stalled next hop also stops reading from its own sender: so that the
host nearest the stall gives up first, each host waits ``STALL_STEP`` seconds longer for each
host after it in the chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence

from ansible_collections.torchswarm.ddp.plugins.module_utils import dir_stream, tcp
from ansible_collections.torchswarm.ddp.plugins.module_utils.dir_stream import DirRefused, DirStreamError

# In the dataset's directory on a host, written last: {"digest": ...}.
MARKER = ".torchswarm-data"
STALL_STEP = 5
# Seconds a host tries to reach the next one down the chain before routing around it (every
# receiver was listening before the first byte was sent).
CONNECT_WAIT = 10


def listing(src: str) -> tuple[str, list[dict]]:
    """The directory the files are read from and its files (relative path, size, mtime_ns), in
    sorted order; a single file is a dataset of one. The marker is not part of a dataset."""
    if os.path.isfile(src):
        root, names = os.path.dirname(os.path.abspath(src)), [os.path.basename(src)]
    else:
        root = src
        names = [f["path"] for f in dir_stream.files_of(src) if f["path"] != MARKER]
    files = []
    for name in names:
        stat = os.stat(os.path.join(root, name))
        files.append({"path": name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return root, files


def manifest_digest(files: Sequence[dict]) -> str:
    """The dataset's digest: of every file's path, size and sha256, in path order."""
    manifest = sorted([f["path"], f["size"], f["sha256"]] for f in files)
    return "sha256:" + hashlib.sha256(json.dumps(manifest, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(dir_stream.CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_with_cache(
    files: Sequence[dict], cached: dict | None, sha256_of: Callable[[str], str]
) -> tuple[str, dict, list[str]]:
    """The digest of ``files`` (a listing), reading again (``sha256_of``) only the files whose
    size or modification time differ from ``cached`` (the entry this returned last time); the
    digest, the entry to keep, and the paths read."""
    known = {f["path"]: f for f in (cached or {}).get("files", []) if isinstance(f, dict)}
    entry, read = [], []
    for f in files:
        old = known.get(f["path"])
        if (
            old
            and old.get("size") == f["size"]
            and old.get("mtime_ns") == f["mtime_ns"]
            and old.get("sha256")
        ):
            sha = old["sha256"]
        else:
            sha = sha256_of(f["path"])
            read.append(f["path"])
        entry.append({**f, "sha256": sha})
    return manifest_digest(entry), {"files": entry}, read


def held_digest(dest: str) -> str | None:
    """The digest of the dataset ``dest`` holds, complete, or None."""
    try:
        with open(os.path.join(dest, MARKER), encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return None
    return value.get("digest") if isinstance(value, dict) else None


def replaceable(dest: str) -> bool:
    """Whether ``dest`` may be replaced by a dataset: absent, empty, or one staged before."""
    return not os.path.exists(dest) or (
        os.path.isdir(dest) and (not os.listdir(dest) or held_digest(dest) is not None)
    )


def install(incoming: str, dest: str, digest: str) -> None:
    """``incoming`` (complete, checked) becomes ``dest``, replacing what was there, marker last."""
    with open(os.path.join(incoming, MARKER), "w", encoding="utf-8") as handle:
        json.dump({"digest": digest}, handle)
    old = None
    if os.path.lexists(dest):
        old = tempfile.mkdtemp(prefix=".replaced-", dir=os.path.dirname(dest))
        os.rename(dest, os.path.join(old, "data"))
    os.rename(incoming, dest)
    os.chmod(dest, 0o755)
    if old:
        shutil.rmtree(old, ignore_errors=True)


class _Hop:
    """The next host down the chain as this one sends to it: the first of ``addresses`` that
    answers (the others before it are routed around, ``skipped``); a failure later is kept in
    ``problem`` and ends the passing on, never this host's own copy."""

    def __init__(self, addresses: Sequence[tuple[str, int]], token: str, timeout: float):
        self.skipped: list[str] = []
        self.conn: socket.socket | None = None
        self.name, self.rest, self.problem, self.passed_all = "", [], None, False
        for i, (address, port) in enumerate(addresses):
            after = len(addresses) - i - 1
            try:
                conn = dir_stream.connect(address, port, token, CONNECT_WAIT, timeout + STALL_STEP * after)
            except DirStreamError as e:
                self.skipped.append(f"{address}:{port} ({e})")
                continue
            self.conn, self.name, self.rest = conn, f"{address}:{port}", list(addresses[i + 1 :])
            return

    def send(self, data: bytes) -> None:
        if self.conn is None:
            return
        try:
            self.conn.sendall(data)
        except OSError as e:
            self.fail(f"passing the stream on broke: {e}")

    def expect(self, word: bytes) -> None:
        """The next host's answer, which must be ``word`` (GO, OK)."""
        if self.conn is None:
            return
        try:
            line = tcp.read_line(self.conn, 4096).strip()
        except OSError as e:
            line = f"no answer: {e}".encode()
        if line != word:
            self.fail(line.decode("utf-8", "replace") or "it closed the connection without an answer")

    def fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def send(
    root: str, files: Sequence[dict], addresses: Sequence[tuple[str, int]], token: str, timeout: float
) -> dict:
    """The files to the first host of ``addresses`` that takes them (it passes them on to the
    rest), routing around any that does not answer or breaks off mid-stream. Returns the bytes,
    seconds, the host that took them and the hosts routed around (``routed_around``); raises
    DirRefused when a host refused the dataset, DirStreamError when none took it."""
    routed: list[str] = []
    addresses = list(addresses)
    start = time.monotonic()
    while addresses:
        hop = _Hop(addresses, token, timeout)
        routed += hop.skipped
        if hop.conn is None:
            break
        try:
            with hop.conn:
                result = dir_stream.send_dir(hop.conn, root, list(files))
        except DirRefused as e:
            raise DirRefused(f"{hop.name}: {e}") from e
        except (OSError, DirStreamError) as e:
            routed.append(f"{hop.name} ({e})")
            addresses = hop.rest
            continue
        if result["skipped"]:
            raise DirRefused(f"{hop.name} refused the dataset: {result['skipped']}")
        return {
            "bytes": result["bytes"],
            "seconds": round(time.monotonic() - start, 2),
            "sent_to": hop.name,
            "routed_around": routed,
        }
    raise DirStreamError(f"no host down the chain took the dataset: {'; '.join(routed) or 'none to send to'}")


def receive(
    port: int,
    token: str,
    dest: str,
    digest: str,
    forward: Sequence[tuple[str, int]],
    wait: float,
    timeout: float,
) -> dict:
    """Take the dataset whose digest is ``digest`` into ``dest``, passing it on down the chain
    (``forward``, the hosts after this one) as it arrives. A stream that breaks off is waited
    for again, ``wait`` seconds (the host before this one may route around a failed one to
    here). Returns bytes, seconds, the sender, the host passed on to, the hosts routed around."""
    refused: list[str] = []

    def check(line: bytes) -> str | None:
        return dir_stream.header_problem(line, token)

    with socket.create_server(("", port)) as server:
        deadline = time.monotonic() + wait
        while True:
            try:
                conn, peer = tcp.accept(server, deadline, timeout, check, refused)
            except TimeoutError as e:
                raise DirStreamError(f"no sender connected within {wait:.0f} s{tcp.refusals(refused)}") from e
            try:
                with conn:
                    return {**_receive_one(conn, dest, digest, forward, token, timeout), "peer": peer}
            except DirRefused:
                raise
            except (OSError, DirStreamError) as e:
                refused.append(f"{peer}: {e}")
                deadline = time.monotonic() + wait


def _receive_one(conn, dest: str, digest: str, forward, token: str, timeout: float) -> dict:
    start = time.monotonic()
    line = dir_stream.read_line(conn)
    files = dir_stream.file_list(dir_stream.parse_line(line, "file list"))
    total = sum(f["size"] for f in files)
    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    free = shutil.disk_usage(parent).free
    why = None
    if not replaceable(dest):
        why = f"{dest} holds files that no dataset staged there (a directory of its own is needed)"
    elif total > free:
        why = f"{total} bytes do not fit in the {free} free on {parent}"
    if why:
        conn.sendall(f"SKIP {why}\n".encode())
        raise DirRefused(why)
    hop = _Hop(forward, token, timeout) if forward else None
    try:
        if hop:
            hop.send(line)
            hop.expect(b"GO")
        conn.sendall(b"GO\n")
        incoming = tempfile.mkdtemp(prefix=".incoming-", dir=parent)
        try:
            received = [
                {
                    **f,
                    "sha256": dir_stream.receive_file(
                        conn, os.path.join(incoming, f["path"]), f["size"], hop and hop.send
                    ),
                }
                for f in files
            ]
            line = dir_stream.read_line(conn)
            if hop:
                hop.send(line)
                hop.passed_all = hop.conn is not None
            sent = dir_stream.parse_line(line, "digests").get("sha256")
            problem = None
            if sent != {f["path"]: f["sha256"] for f in received}:
                problem = "the files' sha256 differ from the sender's"
            elif manifest_digest(received) != digest:
                problem = f"the dataset that arrived is {manifest_digest(received)}, expected {digest}"
            if problem:
                conn.sendall(f"BAD {problem}\n".encode())
                raise DirRefused(problem)
            if hop:
                hop.expect(b"OK")
            install(incoming, dest, digest)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        conn.sendall(b"OK\n")
    finally:
        if hop:
            hop.close()
    routed = list(hop.skipped) if hop else []
    if hop and hop.problem:
        routed.append(f"{hop.name} ({hop.problem})")
        # It broke off before it had everything: the hosts after it get this host's copy.
        if not hop.passed_all and hop.rest:
            try:
                routed += send(dest, files, hop.rest, token, timeout)["routed_around"]
            except DirStreamError as e:  # this host's copy stands; those hosts fail on their own
                routed.append(str(e))
    return {
        "bytes": total,
        "seconds": round(time.monotonic() - start, 2),
        "forwarded_to": hop.name if hop else "",
        "routed_around": routed,
    }
