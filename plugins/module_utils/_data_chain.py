"""A dataset from the controller onto every training host (job_data_src), down a chain.

The controller sends the files to the first host that lacks them; each host writes them and
passes each chunk on to the next host as it arrives (the directory stream of dir_stream.py,
forwarded byte for byte), so N hosts hold the dataset in about one transfer's time plus a short
delay per hop, and each link carries it once. A host counts only once the digest of what it
received (``manifest_digest``) is the controller's: the files then move, in one rename, into a
directory named by that digest (``version_dir``) below the host's dataset directory, which is
what the ranks mount; its being there is what the next run reads to send nothing. Older
versions are removed then; nothing else in the dataset directory is touched.

Routing around: a host down the chain that does not answer is skipped (the hop goes to the one
after it); one that fails or stalls mid-stream is dropped, and the host before it, once its own
copy is complete, sends that copy on to the hosts after the failed one, which went back to
listening when their stream broke. The failed host itself fails, naming why.

A sender that waits on a stalled next hop also stops reading from its own sender: so that the
host nearest the stall gives up first, each host waits ``STALL_STEP`` seconds longer for each
host after it in the chain.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence

from ansible_collections.torchswarm.ddp.plugins.module_utils import _dir_stream as dir_stream
from ansible_collections.torchswarm.ddp.plugins.module_utils import _tcp as tcp
from ansible_collections.torchswarm.ddp.plugins.module_utils._dir_stream import DirRefused, DirStreamError

STALL_STEP = 5
# Seconds a host tries to reach the next one down the chain before routing around it (every
# receiver was listening before the first byte was sent).
CONNECT_WAIT = 10


def listing(src: str) -> tuple[str, list[dict]]:
    """The directory the files are read from and its files (relative path, size, mtime_ns), in
    sorted order; a single file is a dataset of one."""
    if os.path.isfile(src):
        root, names = os.path.dirname(os.path.abspath(src)), [os.path.basename(src)]
    else:
        root = src
        names = [f["path"] for f in dir_stream.files_of(src)]
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


VERSION_PREFIX = "sha256-"


def version_dir(root: str, digest: str) -> str:
    """Where below ``root`` (a host's dataset directory) the dataset of ``digest`` is kept."""
    return os.path.join(root, VERSION_PREFIX + digest.removeprefix("sha256:"))


def holds(root: str, digest: str) -> bool:
    """Whether the host holds the dataset of ``digest``, complete and checked."""
    return os.path.isdir(version_dir(root, digest))


def install(incoming: str, root: str, digest: str) -> None:
    """``incoming`` (complete, checked) becomes the version of ``digest``; older versions go."""
    current = version_dir(root, digest)
    if os.path.isdir(current):
        shutil.rmtree(incoming)
    else:
        os.chmod(incoming, 0o755)
        os.rename(incoming, current)
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.startswith(VERSION_PREFIX) and path != current and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


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
    root: str,
    files: Sequence[dict],
    addresses: Sequence[tuple[str, int]],
    token: str,
    timeout: float,
    progress=None,
) -> dict:
    """The files to the first host of ``addresses`` that takes them (it passes them on to the
    rest), routing around any that does not answer or breaks off mid-stream (``progress``, if
    given, is called with the bytes sent to the current one so far). Returns the bytes,
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
                result = dir_stream.send_dir(hop.conn, root, list(files), progress)
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
    root: str,
    digest: str,
    forward: Sequence[tuple[str, int]],
    wait: float,
    timeout: float,
    limit: float = 0,
) -> dict:
    """Take the dataset whose digest is ``digest`` into its version below ``root`` (the host's
    dataset directory), passing it on down the chain (``forward``, the hosts after this one) as
    it arrives. After a stream that broke off, the host waits for a sender again, until ``limit``
    seconds from the start (at least ``wait`` more): the host before the failed one sends its
    own copy here once that copy is complete, which for a large dataset takes long. Returns
    bytes, seconds, the sender, the host passed on to, the hosts routed around."""
    refused: list[str] = []
    started = time.monotonic()

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
                    return {**_receive_one(conn, root, digest, forward, token, timeout), "peer": peer}
            except DirRefused:
                raise
            except (OSError, DirStreamError) as e:
                refused.append(f"{peer}: {e}")
                deadline = max(time.monotonic() + wait, started + limit)


def _receive_one(conn, root: str, digest: str, forward, token: str, timeout: float) -> dict:
    start = time.monotonic()
    line = dir_stream.read_line(conn)
    files = dir_stream.file_list(dir_stream.parse_line(line, "file list"))
    total = sum(f["size"] for f in files)
    os.makedirs(root, exist_ok=True)
    free = shutil.disk_usage(root).free
    if total > free:
        why = f"{total} bytes do not fit in the {free} free on {root}"
        conn.sendall(f"SKIP {why}\n".encode())
        raise DirRefused(why)
    hop = _Hop(forward, token, timeout) if forward else None
    try:
        if hop:
            hop.send(line)
            hop.expect(b"GO")
        conn.sendall(b"GO\n")
        incoming = tempfile.mkdtemp(prefix=".incoming-", dir=root)
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
            install(incoming, root, digest)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        # The dataset is here and checked: a sender gone by now does not undo that.
        with contextlib.suppress(OSError):
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
                routed += send(version_dir(root, digest), files, hop.rest, token, timeout)["routed_around"]
            except DirStreamError as e:  # this host's copy stands; those hosts fail on their own
                routed.append(str(e))
    return {
        "bytes": total,
        "seconds": round(time.monotonic() - start, 2),
        "forwarded_to": hop.name if hop else "",
        "routed_around": routed,
    }
