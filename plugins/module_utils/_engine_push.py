"""Push an image through the local Docker engine's API with credentials sent in the request.

`docker login` writes the password into ~/.docker/config.json; the engine's push endpoint takes
it in the X-Registry-Auth header instead, so it never reaches the controller's disk. The pure
parts (reference, header, reading the engine's progress) are separate from the socket.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_SOCKET = "/var/run/docker.sock"


class PushError(Exception):
    """The engine or the registry refused the push."""


def split_reference(image: str) -> tuple[str, str]:
    """``[registry[:port]/]path[:tag]`` into repository and tag (``latest`` when none)."""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = image.rsplit(":", 1)
        return repository, tag
    return image, "latest"


def registry_of(image: str) -> str:
    """The registry part of an image reference (``host[:port]``), or Docker Hub's address."""
    first, _unused, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return "https://index.docker.io/v1/"


def auth_header(username: str, password: str, server: str) -> str:
    """The engine's X-Registry-Auth value: base64url of the credentials as JSON."""
    data = json.dumps({"username": username, "password": password, "serveraddress": server})
    return base64.urlsafe_b64encode(data.encode()).decode()


def push_outcome(events: Iterable[Mapping[str, Any]]) -> dict:
    """From the engine's progress messages: whether a layer was uploaded, the manifest digest,
    or the error that ended the push (raised as PushError)."""
    pushed = False
    digest = None
    for event in events:
        if "error" in event:
            raise PushError(str((event.get("errorDetail") or {}).get("message") or event["error"]))
        pushed = pushed or event.get("status") == "Pushed"
        digest = (event.get("aux") or {}).get("Digest", digest)
    return {"changed": pushed, "digest": digest}


def engine_socket() -> str:
    """The engine's socket: DOCKER_HOST when it names a unix socket, else the default."""
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://") :] if host.startswith("unix://") else DEFAULT_SOCKET


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def push(image: str, auth: str | None, timeout: float = 3600, path: str | None = None) -> dict:
    """Push ``image`` from the local engine; ``auth`` is an auth_header() value or None."""
    repository, tag = split_reference(image)
    conn = _UnixConnection(path or engine_socket(), timeout)
    try:
        url = f"/images/{urllib.parse.quote(repository, safe='/:')}/push?tag={urllib.parse.quote(tag)}"
        # The engine wants the header even without credentials.
        conn.request("POST", url, headers={"X-Registry-Auth": auth or auth_header("", "", "")})
        response = conn.getresponse()
        if response.status != 200:
            body = response.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                body = json.loads(body).get("message", body)
            raise PushError(f"the engine answered {response.status}: {body.strip()}")
        events = (json.loads(line) for line in response if line.strip())
        return push_outcome(events)
    finally:
        conn.close()
