from __future__ import annotations

import base64
import json
import socket
import threading

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _engine_push as engine_push


@pytest.mark.parametrize(
    ("image", "repository", "tag", "registry"),
    [
        ("10.0.0.5:5000/team/trainer:1", "10.0.0.5:5000/team/trainer", "1", "10.0.0.5:5000"),
        ("10.0.0.5:5000/team/trainer", "10.0.0.5:5000/team/trainer", "latest", "10.0.0.5:5000"),
        ("registry.example.com/trainer:2.1", "registry.example.com/trainer", "2.1", "registry.example.com"),
        ("localhost/trainer", "localhost/trainer", "latest", "localhost"),
        ("torchswarm/trainer:latest", "torchswarm/trainer", "latest", "https://index.docker.io/v1/"),
        ("trainer", "trainer", "latest", "https://index.docker.io/v1/"),
    ],
)
def test_references_split_into_repository_tag_and_registry(image, repository, tag, registry):
    assert engine_push.split_reference(image) == (repository, tag)
    assert engine_push.registry_of(image) == registry


def test_the_auth_header_is_base64url_json_the_engine_decodes():
    header = engine_push.auth_header("ci", "pa$$/+=", "10.0.0.5:5000")
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "username": "ci",
        "password": "pa$$/+=",
        "serveraddress": "10.0.0.5:5000",
    }


def test_a_push_changes_only_when_a_layer_was_uploaded_and_an_error_ends_it():
    existing = [{"status": "Layer already exists", "id": "a"}, {"aux": {"Digest": "sha256:1", "Tag": "1"}}]
    assert engine_push.push_outcome(existing) == {"changed": False, "digest": "sha256:1"}
    uploaded = [
        {"status": "Pushing", "id": "a"},
        {"status": "Pushed", "id": "a"},
        {"aux": {"Digest": "sha256:2"}},
    ]
    assert engine_push.push_outcome(uploaded) == {"changed": True, "digest": "sha256:2"}
    with pytest.raises(engine_push.PushError, match="no basic auth credentials"):
        engine_push.push_outcome(
            [{"status": "Pushing"}, {"error": "x", "errorDetail": {"message": "no basic auth credentials"}}]
        )


def test_push_sends_the_credentials_in_the_header_and_reads_the_engines_stream(tmp_path):
    """STAND-IN engine on a unix socket: it answers the push endpoint as the engine does."""
    path = str(tmp_path / "docker.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)
    seen = {}

    def engine():
        conn, _unused = server.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            head = request.decode().split("\r\n")
            seen["line"] = head[0]
            seen["auth"] = next(h.split(": ", 1)[1] for h in head if h.lower().startswith("x-registry-auth"))
            body = b'{"status":"Pushed","id":"a"}\r\n{"aux":{"Digest":"sha256:9"}}\r\n'
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body
            )

    thread = threading.Thread(target=engine)
    thread.start()
    auth = engine_push.auth_header("ci", "s3cret", "10.0.0.5:5000")
    result = engine_push.push("10.0.0.5:5000/team/trainer:1", auth, timeout=10, path=path)
    thread.join()
    server.close()
    assert result == {"changed": True, "digest": "sha256:9"}
    assert seen["line"] == "POST /images/10.0.0.5:5000/team/trainer/push?tag=1 HTTP/1.1"
    assert json.loads(base64.urlsafe_b64decode(seen["auth"]))["password"] == "s3cret"
