"""Send only the layers a receiver lacks: which layers of a ``docker save`` archive to leave out.

An image FROM the bundled one shares every layer but its last few with it; a node that holds the
bundled image needs only those. ``docker load`` takes an archive whose manifest names a layer
that the archive leaves out, as long as the engine already holds that layer (it looks each layer
up by its chain ID before it reads the file), and the receiver's image ID check still decides.

A layer is the same on both engines when its chain ID is: the digest of the layer's content and
of every layer below it. The receiver says which of the image's chain IDs it holds; the sender
streams its archive through ``drop_layers``, which leaves out those layers' files:

- ``docker save`` of Docker 25 and later (OCI layout) names a layer ``blobs/sha256/<diff ID>``;
- older engines name it ``<v1 ID>/layer.tar``, where the v1 ID is a digest of the layer's
  ``<v1 ID>/json`` (which comes first in the archive) with its chain ID, so the file is matched
  to a chain ID by computing that digest (``v1_id``), never by guessing.

A file that matches nothing is sent. Pure, apart from the streams it is given.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_OCI_BLOB = re.compile(r"^blobs/sha256/(?P<hex>[0-9a-f]{64})$")
_LEGACY = re.compile(r"^(?P<dir>[0-9a-f]{64})/(?P<file>json|layer\.tar)$")


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """Each layer's chain ID (OCI image spec): the first layer's diff ID, then the digest of the
    chain below and the layer's diff ID, joined by a space."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chain = (
            diff_id
            if not chains
            else "sha256:" + hashlib.sha256(f"{chains[-1]} {diff_id}".encode()).hexdigest()
        )
        chains.append(chain)
    return chains


def held_chains(images_diff_ids: Iterable[Sequence[str]]) -> set[str]:
    """Every chain ID an engine holds, from the diff IDs of each of its images."""
    return {chain for diff_ids in images_diff_ids for chain in chain_ids(diff_ids)}


def _raw_members(text: str) -> dict[str, str]:
    """A JSON object's members as their raw text, as Go re-marshals them (unchanged)."""
    decoder = json.JSONDecoder()
    text = text.strip()
    members: dict[str, str] = {}
    i = 1
    while text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i += 1  # the colon: Go writes compact JSON
        _unused, end = decoder.raw_decode(text, i)
        members[key] = text[i:end]
        i = end + (text[end] == ",")
    return members


def v1_id(v1_json: str, chain_id: str, with_os: bool) -> str:
    """The v1 ID that Docker before 25 names a saved layer's directory by: the digest of its v1
    JSON without ``id``, with ``layer_id`` (the chain ID) and ``parent`` (the parent's v1 ID,
    as a digest), keys sorted. Below the top layer Docker computes it before adding ``os``."""
    members = _raw_members(v1_json)
    members.pop("id", None)
    parent = json.loads(members.pop("parent", '""'))
    if not with_os:
        members.pop("os", None)
    members["layer_id"] = json.dumps(chain_id)
    if parent:
        members["parent"] = json.dumps("sha256:" + parent)
    canonical = "{" + ",".join(f"{json.dumps(k)}:{members[k]}" for k in sorted(members)) + "}"
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class LayerFilter:
    """Decides, member by member of a saved archive, which layer files the receiver holds."""

    diff_ids: Sequence[str]
    held: set[str]
    dropped: int = 0
    dropped_bytes: int = 0
    _legacy_held: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        chains = chain_ids(self.diff_ids)
        self._chains = chains
        # A diff ID may sit at two places in an image; its file is needed if either chain is not held.
        self._blobs_held = {
            d.removeprefix("sha256:")
            for d in self.diff_ids
            if all(c in self.held for c, x in zip(chains, self.diff_ids, strict=True) if x == d)
        }

    def note(self, name: str, data: bytes) -> None:
        """A legacy layer's json: the chain ID whose v1 ID is its directory's name, if held."""
        match = _LEGACY.match(name)
        if not match or match["file"] != "json":
            return
        text = data.decode("utf-8", "replace")
        for chain in (c for c in self._chains if c in self.held):
            if match["dir"] in (v1_id(text, chain, with_os=False), v1_id(text, chain, with_os=True)):
                self._legacy_held.add(match["dir"])
                return

    def drops(self, name: str) -> bool:
        oci = _OCI_BLOB.match(name)
        if oci:
            return oci["hex"] in self._blobs_held
        legacy = _LEGACY.match(name)
        return bool(legacy and legacy["file"] == "layer.tar" and legacy["dir"] in self._legacy_held)


# A legacy layer's json is a few KB; more is not one, and is passed on unread.
_NOTE_LIMIT = 1 << 20


def drop_layers(src: BinaryIO, dst: BinaryIO, layers: LayerFilter) -> LayerFilter:
    """Copy the tar archive ``src`` to ``dst`` without the layer files ``layers`` drops."""
    with (
        tarfile.open(fileobj=src, mode="r|") as archive,
        tarfile.open(fileobj=dst, mode="w|", format=tarfile.PAX_FORMAT) as out,
    ):
        for member in archive:
            if member.isfile() and layers.drops(member.name):
                layers.dropped += 1
                layers.dropped_bytes += member.size
                continue
            data = archive.extractfile(member) if member.isfile() else None
            if data is not None and member.size <= _NOTE_LIMIT and member.name.endswith("/json"):
                body = data.read()
                layers.note(member.name, body)
                out.addfile(member, io.BytesIO(body))
            else:
                out.addfile(member, data)
    return layers


def layers_line(chains: Sequence[str]) -> bytes:
    """What a sender tells the receiver: the chain IDs of the image it is about to send."""
    return ("LAYERS " + " ".join(chains) + "\n").encode()


def held_line(chains: Iterable[str]) -> bytes:
    """The receiver's answer: which of them its engine holds."""
    return ("HAVE " + " ".join(chains) + "\n").encode()


def parse_line(line: bytes, word: str) -> list[str] | None:
    """The chain IDs of a LAYERS or HAVE line; None when the line is not one."""
    parts = line.decode("ascii", "replace").split()
    if not parts or parts[0] != word or not all(DIGEST.match(p) for p in parts[1:]):
        return None
    return parts[1:]
