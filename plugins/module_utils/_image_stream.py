"""Stream an image between Docker engines over TCP, checked by its ID.

The sender says which layers the image has and the receiver which of them its engine holds;
the sender then runs ``docker save`` without those layers (image_layers.py) (and zstd) into the
socket, the receiver the socket into (zstd -d and) ``docker load``. Nothing is written to disk on
either side but what docker load itself stores. The protocol lines come from fanout.py.

A receiver in a chain (``forward``) is also the next receiver's sender: it asks the next one
which layers it holds before it answers (so that only layers held all down the chain are left
out), writes each chunk both to its own docker load and on to the next host as it arrives, and
answers once the next host has answered it, so the head's answer means the whole chain is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _fanout as fanout,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _image_layers as image_layers,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils import (
    _tcp as tcp,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._tcp import read_line as _read_line

CHUNK = 1 << 20


class StreamError(tcp.TransferError):
    """A transfer that did not end with the receiver holding the expected image ID."""


# A LAYERS or HAVE line: at most 127 layers (overlay2's limit is 128) of 72 characters.
LAYERS_LIMIT = 16 << 10


@dataclass
class Transfer:
    bytes: int
    seconds: float
    peer: str
    # The image's layers, and how many of them the receiver held already (not sent).
    layers: int = 0
    layers_held: int = 0
    # A receiver's first and last byte (epoch seconds), and the host it passed the stream on to.
    first_byte: float = 0.0
    last_byte: float = 0.0
    forwarded_to: str = ""
    # The receivers down the chain that did not answer, each with why, passed over for the next.
    routed_around: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return {
            "bytes": self.bytes,
            "seconds": round(self.seconds, 2),
            "mb_per_s": round(rate, 1),
            "peer": self.peer,
            "layers": self.layers,
            "layers_held": self.layers_held,
            "first_byte": round(self.first_byte, 3),
            "last_byte": round(self.last_byte, 3),
            "forwarded_to": self.forwarded_to,
            "routed_around": self.routed_around,
        }


def image_id(docker: DockerCli, image: str) -> str | None:
    """The ID the local engine gives ``image``, or None when it has no such image."""
    try:
        return docker.run("image", "inspect", "--format", "{{.Id}}", image).strip()
    except DockerCliError:
        return None


def diff_ids(docker: DockerCli, image: str) -> list[str]:
    """The image's layers, bottom first, as the local engine lists them."""
    return json.loads(docker.run("image", "inspect", "--format", "{{json .RootFS.Layers}}", image))


def held_chains(docker: DockerCli) -> set[str]:
    """The chain ID of every layer the local engine holds (of any image). None are claimed on an
    engine that keeps images in containerd, whose load needs every layer in the archive."""
    if "io.containerd.snapshotter" in docker.run("info", "--format", "{{json .DriverStatus}}"):
        return set()
    ids = sorted(set(docker.lines("image", "ls", "--quiet", "--no-trunc")))
    if not ids:
        return set()
    layers = docker.lines("image", "inspect", "--format", "{{json .RootFS.Layers}}", *ids)
    return image_layers.held_chains(json.loads(line) for line in layers)


def _pipeline(commands: list[list[str]], stdin=None, stdout=None) -> list[subprocess.Popen]:
    """Start commands piped into each other; the first reads ``stdin``, the last writes ``stdout``."""
    procs: list[subprocess.Popen] = []
    for i, argv in enumerate(commands):
        last = i == len(commands) - 1
        try:
            # A stream between a socket and docker save/load: run_command would wait for the
            # command and hold all of its output.
            proc = subprocess.Popen(  # pylint: disable=ansible-bad-function
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


def receive(
    docker: DockerCli,
    port: int,
    token: str,
    expected_id: str,
    image: str,
    compression: str,
    wait: float,
    timeout: float,
    forward: Sequence[tuple[str, int]] = (),
):
    """Accept the first sender that presents ``token`` within ``wait`` seconds, load its stream
    (passing it on, as it arrives, to the first of ``forward``, the addresses and ports of the
    receivers after this one down the chain, that answers: one that does not is routed around)
    and answer it; returns the Transfer, raises StreamError when the image is not ``expected_id``
    here or passing the stream on broke off.
    """
    server = socket.create_server(("", port), reuse_port=False)
    try:
        return _serve_one(docker, server, token, expected_id, image, compression, wait, timeout, forward)
    finally:
        server.close()


# Seconds a receiver tries to reach the next one down the chain before routing around it (every
# receiver of a round listens before the first byte is sent).
CONNECT_WAIT = 10


class _Next:
    """The next receiver of a chain, as this receiver sends to it: the first of ``forward`` that
    answers (those before it are routed around, ``skipped``), asked which layers it holds before
    the stream starts; given each chunk; asked for its answer at the end. A failure after that is
    kept (``problem``) and stops the passing on, never this host's own load."""

    def __init__(self, forward, token, compression, chains, wait, timeout):
        self.name, self.skipped = "", []
        self.conn: socket.socket | None = None
        self.held: set[str] = set()
        self.problem: str | None = None
        for address, port in forward:
            try:
                self.held = self._reach(
                    address, port, token, compression, chains, min(wait, CONNECT_WAIT), timeout
                )
            except (OSError, StreamError) as e:
                self.skipped.append(f"{address}:{port} ({e})")
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
                continue
            self.name = f"{address}:{port}"
            return

    def _reach(self, address, port, token, compression, chains, wait, timeout) -> set[str]:
        self.conn = tcp.connect(address, port, wait, StreamError)
        self.conn.settimeout(timeout)
        self.conn.sendall(fanout.header(token, compression) + image_layers.layers_line(chains))
        held = image_layers.parse_line(_read_line(self.conn, LAYERS_LIMIT), "HAVE")
        if held is None:
            raise StreamError("it closed the connection without an answer to the image's layers")
        return set(held)

    def _fail(self, problem: str) -> None:
        self.problem = self.problem or problem
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def send(self, chunk: bytes, sent: int) -> None:
        if self.conn is None:
            return
        try:
            self.conn.sendall(chunk)
        except OSError as e:
            self._fail(f"passing the stream on broke after {sent} bytes: {e}{_last_word(self.conn)}")

    def answer(self, image_id: str) -> None:
        """Wait for the next receiver's answer (once it has loaded and checked the image)."""
        if self.conn is None:
            return
        try:
            self.conn.shutdown(socket.SHUT_WR)
            problem = fanout.reply_problem(_read_line(self.conn, 4096), image_id)
        except OSError as e:
            problem = f"no answer: {e}"
        if problem:
            self._fail(problem)
        elif self.conn is not None:
            self.conn.close()
            self.conn = None


def _serve_one(docker, server, token, expected_id, image, compression, wait, timeout, forward=None):
    deadline = time.monotonic() + wait
    refused: list[str] = []

    def check(line: bytes) -> str | None:
        return fanout.header_problem(line, token, compression)

    while True:
        try:
            conn, peer = tcp.accept(server, deadline, timeout, check, refused, fanout.HEADER_LIMIT)
        except TimeoutError as e:
            raise StreamError(f"no sender connected within {wait:.0f} s{tcp.refusals(refused)}") from e
        with conn:
            start = time.monotonic()
            try:
                chains = image_layers.parse_line(_read_line(conn, LAYERS_LIMIT), "LAYERS")
            except OSError as e:
                refused.append(f"{peer}: {e}")
                continue
            if chains is None:
                raise StreamError(f"{peer} sent no list of the image's layers after its header")
            routed = _Next(forward, token, compression, chains, wait, timeout) if forward else None
            after = routed if routed and routed.conn is not None else None
            held = held_chains(docker)
            # Left out of the stream: what this host holds and, down a chain, every host after it.
            conn.sendall(
                image_layers.held_line(c for c in chains if c in held and (not after or c in after.held))
            )
            received, times, problem = _load(conn, compression, after)
            loaded = image_id(docker, image)
            if problem is None and loaded != expected_id:
                problem = f"after docker load, {image} is {loaded or 'missing'}, expected {expected_id}"
            if after:
                after.answer(expected_id)
            conn.sendall(fanout.reply(loaded, problem))
            if problem:
                raise StreamError(problem)
            if after and after.problem:
                raise StreamError(
                    f"the image loaded here, but passing it on to {after.name} failed: {after.problem}"
                )
            kept = len(set(chains) & held)
            return Transfer(
                received,
                time.monotonic() - start,
                peer,
                len(chains),
                kept,
                *times,
                after.name if after else "",
                routed.skipped if routed else [],
            )


def _load(conn: socket.socket, compression: str, after: _Next | None = None):
    """The stream into docker load (and on to ``after``): the bytes received, the times of the
    first and last byte, and why the load failed (None when it did not)."""
    procs = _pipeline(fanout.load_commands(compression), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    received, first, loading = 0, 0.0, True
    try:
        while chunk := conn.recv(CHUNK):
            first = first or time.time()
            if loading:
                try:
                    procs[0].stdin.write(chunk)
                except BrokenPipeError:
                    loading = False  # the loader stopped early: its exit status says why
            if after:
                after.send(chunk, received)  # the hosts after this one need it all the same
            received += len(chunk)
            if not loading and (after is None or after.problem):
                break
    except OSError as e:
        _stop(procs)
        return received, (first, time.time()), f"the stream broke after {received} bytes: {e}"
    finally:
        with contextlib.suppress(BrokenPipeError):
            procs[0].stdin.close()
    return received, (first, time.time()), _finish(procs)


def send(
    docker: DockerCli,
    address: str,
    port: int,
    token: str,
    expected_id: str,
    image: str,
    compression: str,
    wait: float,
    timeout,
    progress=None,
):
    """Stream ``image`` to a receiver at ``address``:``port`` (retrying the connection for up to
    ``wait`` seconds while it starts listening), without the layers it holds, and wait for its
    answer. ``progress``, if given, is called with the bytes sent so far after each chunk, and
    with ``last=True`` once every byte is sent, while the receivers load the image."""
    have = image_id(docker, image)
    if have != expected_id:
        raise StreamError(f"this host's {image} is {have or 'missing'}, not {expected_id}")
    layers = diff_ids(docker, image)
    conn = tcp.connect(address, port, wait, StreamError)
    with conn:
        conn.settimeout(timeout)
        start = time.monotonic()
        conn.sendall(fanout.header(token, compression))
        conn.sendall(image_layers.layers_line(image_layers.chain_ids(layers)))
        try:
            held = image_layers.parse_line(_read_line(conn, LAYERS_LIMIT), "HAVE")
        except OSError:  # a refusal can come as a reset: the LAYERS line was still unread there
            held = None
        if held is None:
            raise StreamError(
                f"{address}:{port} closed the connection without an answer to the image's layers"
                " (a wrong token, or another version of this collection there)"
            )
        kept = image_layers.LayerFilter(layers, set(held))
        sent = _stream(conn, image, compression, kept, address, port, progress)
        if progress:
            progress(sent, last=True)
        conn.shutdown(socket.SHUT_WR)
        problem = fanout.reply_problem(_read_line(conn, 4096), expected_id)
        if problem:
            raise StreamError(f"{address}:{port}: {problem}")
        return Transfer(sent, time.monotonic() - start, address, len(layers), len(held))


def _stream(
    conn: socket.socket,
    image: str,
    compression: str,
    kept: image_layers.LayerFilter,
    address: str,
    port: int,
    progress=None,
) -> int:
    """docker save, without the layers the receiver holds, (zstd,) into the connection; the
    bytes sent."""
    save = _pipeline([fanout.save_command(image)], stdout=subprocess.PIPE)
    read_end, write_end = os.pipe()
    compress = _pipeline(fanout.compress_commands(compression), stdin=read_end, stdout=subprocess.PIPE)
    if compress:
        os.close(read_end)  # zstd's now
    source = compress[-1].stdout if compress else os.fdopen(read_end, "rb")
    procs = save + compress
    filtered = os.fdopen(write_end, "wb")
    failure: list[BaseException] = []

    def drop_held_layers() -> None:
        try:
            image_layers.drop_layers(save[0].stdout, filtered, kept)
        except (OSError, ValueError, image_layers.tarfile.TarError) as e:
            failure.append(e)
        finally:
            with contextlib.suppress(OSError):
                filtered.close()

    thread = threading.Thread(target=drop_held_layers, daemon=True)
    thread.start()
    sent = 0
    try:
        while chunk := source.read(CHUNK):
            conn.sendall(chunk)
            sent += len(chunk)
            if progress:
                progress(sent)
    except OSError as e:
        _stop(procs)
        raise StreamError(
            f"sending to {address}:{port} broke after {sent} bytes: {e}{_last_word(conn)}"
        ) from e
    finally:
        source.close()
    thread.join()
    problem = _finish(procs)
    if problem or failure:
        raise StreamError(problem or f"reading docker save's archive failed: {failure[0]}")
    return sent


def _last_word(conn: socket.socket) -> str:
    """What a receiver that hung up said before it did, if anything."""
    try:
        conn.settimeout(2)
        line = _read_line(conn, 4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f" (the receiver said: {line})" if line else ""
