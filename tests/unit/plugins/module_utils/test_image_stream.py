"""image_stream over real sockets, real pipes and real zstd; only the docker CLI is a stand-in.

The stand-in `docker` keeps images as the engine does: layers by chain ID, an image's ID is the
digest of its config (which lists its layers' diff IDs), `save` writes an archive in Docker 25's
layout and `load` refuses an archive that lacks a layer the engine does not hold. So a stream
that loses or changes a byte, or leaves out a layer the receiver needs, ends without the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.torchswarm.ddp.plugins.module_utils import _image_stream as image_stream
from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli

STAND_IN_DOCKER = r"""
# STAND-IN docker CLI over one "host" directory ($DOCKER_HOST_DIR): tags.json (name -> image
# ID), configs/<hex> (an image's config), layers/<diff hex> and chains/<chain hex> (held layers).
import hashlib, io, json, os, sys, tarfile
from pathlib import Path

host = Path(os.environ["DOCKER_HOST_DIR"])
tags_file = host / "tags.json"
tags = json.loads(tags_file.read_text()) if tags_file.exists() else {}

def chains(diff_ids):
    out = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out

def config(ref):
    image = tags.get(ref, ref)
    path = host / "configs" / image.removeprefix("sha256:")
    return image, json.loads(path.read_text()) if path.exists() else None

args = sys.argv[1:]
if args[0] == "save":
    image, cfg = config(args[1])
    blobs = {d: (host / "layers" / d[7:]).read_bytes() for d in cfg["rootfs"]["diff_ids"]}
    blobs[image] = (host / "configs" / image[7:]).read_bytes()
    manifest = [{"Config": f"blobs/sha256/{image[7:]}", "RepoTags": [args[1]],
                 "Layers": [f"blobs/sha256/{d[7:]}" for d in cfg["rootfs"]["diff_ids"]]}]
    members = {f"blobs/sha256/{d[7:]}": body for d, body in sorted(blobs.items())}
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
elif args[0] == "load":
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    [entry] = json.loads(members["manifest.json"])
    body = members[entry["Config"]]
    image = "sha256:" + hashlib.sha256(body).hexdigest()
    diff_ids = json.loads(body)["rootfs"]["diff_ids"]
    for diff_id, chain, path in zip(diff_ids, chains(diff_ids), entry["Layers"]):
        if (host / "chains" / chain[7:]).exists():
            continue
        if path not in members or "sha256:" + hashlib.sha256(members[path]).hexdigest() != diff_id:
            sys.exit(f"open {path}: no such file or directory")
        for sub, data in (("layers", members[path]), ("chains", b"")):
            (host / sub).mkdir(exist_ok=True)
            (host / sub / (diff_id if sub == "layers" else chain)[7:]).write_bytes(data)
    (host / "configs").mkdir(exist_ok=True)
    (host / "configs" / image[7:]).write_bytes(body)
    tags.update(dict.fromkeys(entry["RepoTags"], image))
    tags_file.write_text(json.dumps(tags))
elif args[:2] == ["image", "inspect"]:
    for ref in args[4:]:
        image, cfg = config(ref)
        if cfg is None:
            sys.exit(f"Error: No such image: {ref}")
        print(image if args[3] == "{{.Id}}" else json.dumps(cfg["rootfs"]["diff_ids"]))
elif args[:2] == ["image", "ls"]:
    print("\n".join(sorted(set(tags.values()))))
elif args[0] == "info":
    print('[["driver-type","io.containerd.snapshotter.v1"]]' if (host / "containerd").exists() else "[]")
"""

needs_zstd = pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd is not installed")

# The bundled image's layers, and one a user's image FROM it adds.
BASE = [os.urandom(1 << 20), b"layer " * 350_000]
USER = b"print('my script')\n" * 100


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    """Two 'hosts' (directories); the sender's engine holds the base image and a user's image
    FROM it, and the DockerCli both ends talk to them through (over a real AnsibleModule). Both
    ends run in this process, so DOCKER_HOST_DIR is chosen per thread by a wrapper of
    subprocess.Popen (run_command calls it too)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!{sys.executable}\n{STAND_IN_DOCKER}")
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sender, receiver = tmp_path / "sender", tmp_path / "receiver"
    sender.mkdir()
    receiver.mkdir()
    add_image(sender, "base", BASE)
    add_image(sender, "img", [*BASE, USER])
    where = threading.local()
    popen = image_stream.subprocess.Popen

    def env():
        return {**os.environ, "DOCKER_HOST_DIR": str(where.dir)}

    monkeypatch.setattr(image_stream.subprocess, "Popen", lambda *a, **k: popen(*a, **{**k, "env": env()}))
    with patch_module_args({}):
        docker = DockerCli(AnsibleModule(argument_spec={}))
    return where, sender, receiver, docker


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def add_image(host: Path, name: str, layers: list[bytes]) -> str:
    """Put an image into a stand-in engine directly, as a build would."""
    diff_ids = [digest(layer) for layer in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}, "name": name}).encode()
    chain = ""
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        chain = diff_id if not chain else digest(f"{chain} {diff_id}".encode())
        for sub, path, body in (("layers", diff_id, layer), ("chains", chain, b"")):
            (host / sub).mkdir(exist_ok=True)
            (host / sub / path[7:]).write_bytes(body)
    (host / "configs").mkdir(exist_ok=True)
    (host / "configs" / digest(config)[7:]).write_bytes(config)
    tags_file = host / "tags.json"
    tags = json.loads(tags_file.read_text()) if tags_file.exists() else {}
    tags_file.write_text(json.dumps({**tags, name: digest(config)}))
    return digest(config)


def image_id(host: Path, name: str = "img") -> str | None:
    """The ID a stand-in engine gives an image, None without it."""
    tags_file = host / "tags.json"
    return json.loads(tags_file.read_text()).get(name) if tags_file.exists() else None


def transfer(
    hosts,
    port,
    token="t0ken",
    sent_token="t0ken",
    compression="none",
    expected=None,
    wait=10,
    timeout=10,
    receiver_expects=None,
):
    """One transfer between the two hosts; both ends expect ``expected`` (the sender's image ID)
    unless ``receiver_expects`` gives the receiver another one."""
    where, sender, receiver, docker = hosts
    expected = expected or image_id(sender)
    result = {}

    def receive():
        where.dir = receiver
        try:
            result["received"] = image_stream.receive(
                docker, port, token, receiver_expects or expected, "img", compression, wait=wait, timeout=10
            )
        except image_stream.StreamError as e:
            result["receive_error"] = str(e)

    thread = threading.Thread(target=receive)
    thread.start()
    where.dir = sender
    try:
        result["sent"] = image_stream.send(
            docker,
            "127.0.0.1",
            port,
            sent_token,
            expected,
            "img",
            compression,
            10,
            10,
            lambda sent, last=False: result.setdefault("progress", []).append((sent, last)),
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
    _unused, sender, receiver, _docker = hosts
    assert "send_error" not in result and "receive_error" not in result, result
    assert image_id(receiver) == image_id(sender)
    sent, received = result["sent"], result["received"]
    assert sent.bytes == received.bytes
    # What the progress file is written from: the bytes so far after each chunk, up to all of
    # them, and then that every byte is sent.
    seen = result["progress"]
    assert seen == sorted(seen) and seen[-1] == (sent.bytes, True)
    assert not any(last for _unused, last in seen[:-1])
    assert (sent.layers, sent.layers_held) == (received.layers, received.layers_held) == (3, 0)
    size = sum(len(layer) for layer in [*BASE, USER])
    if compression == "zstd":
        assert sent.bytes < size * 0.7  # the repeated layer text compresses
    else:
        assert size < sent.bytes < size + 64 * 1024  # every layer, and the archive around them


def test_a_receiver_that_holds_the_base_image_gets_only_the_layer_the_users_image_adds(hosts):
    _unused, sender, receiver, _docker = hosts
    add_image(receiver, "base", BASE)

    result = transfer(hosts, free_port())

    assert "send_error" not in result and "receive_error" not in result, result
    assert image_id(receiver) == image_id(sender)
    assert (result["received"].layers, result["received"].layers_held) == (3, 2)
    assert len(USER) < result["sent"].bytes < len(USER) + 64 * 1024


def test_the_same_content_in_another_chain_is_sent_again(hosts):
    """A layer counts as held only on top of the same layers: its content alone is not enough."""
    _unused, sender, receiver, _docker = hosts
    add_image(receiver, "other", [BASE[1]])

    result = transfer(hosts, free_port())

    assert image_id(receiver) == image_id(sender)
    assert result["received"].layers_held == 0
    assert result["sent"].bytes > sum(len(layer) for layer in BASE)


def test_an_engine_that_keeps_images_in_containerd_is_sent_every_layer(hosts):
    """Its docker load needs every layer in the archive, so it claims none."""
    _unused, sender, receiver, _docker = hosts
    add_image(receiver, "base", BASE)
    (receiver / "containerd").touch()

    result = transfer(hosts, free_port())

    assert image_id(receiver) == image_id(sender)
    assert result["received"].layers_held == 0
    assert result["sent"].bytes > sum(len(layer) for layer in BASE)


def test_a_sender_with_the_wrong_token_is_refused_and_the_receiver_keeps_waiting(hosts):
    result = transfer(hosts, free_port(), sent_token="guess", wait=3)
    assert "without an answer" in result["send_error"] or "broke" in result["send_error"]
    assert "wrong token" in result["receive_error"] and "no sender connected" in result["receive_error"]
    assert image_id(hosts[2]) is None  # nothing was loaded


def test_a_sender_whose_copy_is_not_the_expected_image_sends_nothing(hosts):
    _unused, sender, receiver, _docker = hosts
    # The sender's tag points at other content than the ID the controller expects.
    result = transfer(hosts, free_port(), expected="sha256:" + "0" * 64, wait=2)
    assert f"this host's img is {image_id(sender)}, not sha256:000" in result["send_error"]
    assert "no sender connected" in result["receive_error"]
    assert image_id(receiver) is None


def test_an_image_that_loads_with_another_id_fails_on_both_ends(hosts):
    """The receiver's own check after docker load: what arrived is not the ID it was told to
    expect (a sender that holds another image under the same ID claim, or a stream changed on
    the way), and the sender reports the receiver's answer."""
    _unused, sender, receiver, _docker = hosts
    wanted = "sha256:" + "0" * 64
    port = free_port()
    result = transfer(hosts, port, receiver_expects=wanted)
    problem = f"after docker load, img is {image_id(sender)}, expected {wanted}"
    assert result["receive_error"] == problem
    assert result["send_error"] == f"127.0.0.1:{port}: {problem}"
    assert image_id(receiver) == image_id(sender)  # it did load: the ID check is what refused it


def test_a_silent_connection_first_is_refused_and_the_sender_after_it_gets_through(hosts):
    where, sender, receiver, docker = hosts
    port, expected, seen = free_port(), image_id(sender), {}

    def receive():
        where.dir = receiver
        seen["received"] = image_stream.receive(
            docker, port, "t0ken", expected, "img", "none", wait=30, timeout=30
        )

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
    sent = image_stream.send(docker, "127.0.0.1", port, "t0ken", expected, "img", "none", 10, 30)
    for thread in threads:
        thread.join()
    assert seen.get("closed_by_receiver"), seen
    assert seen["received"].bytes == sent.bytes
    assert image_id(receiver) == expected


def chain(hosts, tmp_path, ports, forwards, wait=10):
    """The sender streams to the first of ``len(ports)`` receivers (hosts named r0, r1, ...
    under tmp_path, each on its port), each passing it on to the first of ``forwards[i]`` (ports)
    that answers.
    Returns the sender's and each receiver's Transfer or error."""
    where, sender, _unused, docker = hosts
    expected, results = image_id(sender), {}
    dirs = [tmp_path / f"r{i}" for i in range(len(ports))]

    def receive(i):
        dirs[i].mkdir(exist_ok=True)
        where.dir = dirs[i]
        forward = [("127.0.0.1", port) for port in forwards[i]]
        try:
            results[i] = image_stream.receive(
                docker, ports[i], "t0ken", expected, "img", "none", wait=wait, timeout=10, forward=forward
            )
        except image_stream.StreamError as e:
            results[i] = str(e)

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(len(ports))]
    for thread in threads:
        thread.start()
    where.dir = sender
    try:
        results["sent"] = image_stream.send(
            docker, "127.0.0.1", ports[0], "t0ken", expected, "img", "none", 10, 10
        )
    except image_stream.StreamError as e:
        results["sent"] = str(e)
    for thread in threads:
        thread.join()
    return results, dirs


def test_a_chain_passes_the_stream_on_as_it_arrives_and_every_host_ends_with_the_image(
    hosts, tmp_path, monkeypatch
):
    monkeypatch.setattr(image_stream, "CHUNK", 64 << 10)  # many chunks, so that they can overlap
    ports = [free_port() for _unused in range(3)]
    results, dirs = chain(hosts, tmp_path, ports, [ports[1:], ports[2:], []])

    assert all(isinstance(r, image_stream.Transfer) for r in results.values()), results
    assert [image_id(d) for d in dirs] == [image_id(hosts[1])] * 3
    first, second, third = results[0], results[1], results[2]
    assert results["sent"].bytes == first.bytes == second.bytes == third.bytes
    assert (first.forwarded_to, second.forwarded_to, third.forwarded_to) == (
        f"127.0.0.1:{ports[1]}",
        f"127.0.0.1:{ports[2]}",
        "",
    )
    # Pipelined, not stored and forwarded: the last host had bytes before the first had them all.
    assert third.first_byte < first.last_byte, (third.first_byte, first.last_byte)
    # The head answered once the hosts after it had: the sender's return means all are done.
    assert max(r.last_byte for r in (first, second, third)) <= time.time()


@pytest.mark.parametrize("holders", [("r0",), ("r0", "r1")])
def test_a_chain_leaves_out_only_the_layers_every_host_down_it_holds(hosts, tmp_path, holders):
    ports = [free_port() for _unused in range(2)]
    for name in holders:
        (tmp_path / name).mkdir()
        add_image(tmp_path / name, "base", BASE)

    results, dirs = chain(hosts, tmp_path, ports, [ports[1:], []])

    assert [image_id(d) for d in dirs] == [image_id(hosts[1])] * 2, results
    assert [results[0].layers_held, results[1].layers_held] == [2, 2 if "r1" in holders else 0]
    if "r1" in holders:
        assert len(USER) < results["sent"].bytes < len(USER) + 64 * 1024  # only the user's layer
    else:
        assert results["sent"].bytes > sum(len(layer) for layer in BASE)  # r1 needed them all


def test_a_hop_that_cannot_be_reached_is_routed_around_to_the_one_after_it(hosts, tmp_path, monkeypatch):
    monkeypatch.setattr(image_stream, "CONNECT_WAIT", 1)  # the sender waits 10 s for an answer here
    first, nobody, last = free_port(), free_port(), free_port()
    results, dirs = chain(hosts, tmp_path, [first, last], [[nobody, last], []])

    assert isinstance(results["sent"], image_stream.Transfer), results
    assert [image_id(d) for d in dirs] == [image_id(hosts[1])] * 2
    assert results[0].forwarded_to == f"127.0.0.1:{last}"
    [skipped] = results[0].routed_around
    assert skipped.startswith(f"127.0.0.1:{nobody} (cannot connect to 127.0.0.1:{nobody} within"), skipped


def test_a_last_hop_that_cannot_be_reached_leaves_the_host_before_it_with_its_own_image(
    hosts, tmp_path, monkeypatch
):
    monkeypatch.setattr(image_stream, "CONNECT_WAIT", 1)
    port, nobody = free_port(), free_port()
    results, dirs = chain(hosts, tmp_path, [port], [[nobody]], wait=2)

    assert isinstance(results[0], image_stream.Transfer), results  # its own image arrived and checked
    assert image_id(dirs[0]) == image_id(hosts[1]) and results[0].forwarded_to == ""
    assert results[0].routed_around[0].startswith(f"127.0.0.1:{nobody} (cannot connect")
