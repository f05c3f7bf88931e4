"""Which layer files of a saved archive a receiver needs, against what Docker itself wrote.

data/docker-20.10-save.json was taken from a real `docker save` on Debian 12's docker.io 20.10
(the legacy format, whose layer directories are named by v1 IDs) and from that engine's layer
store (the chain ID); the archives below are built around those real names and json files.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _image_layers as image_layers

REAL = json.loads((Path(__file__).parent / "data" / "docker-20.10-save.json").read_text())


def archive(members: dict[str, bytes]) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out.seek(0)
    return out


def names_after(src: io.BytesIO, layers: image_layers.LayerFilter) -> list[str]:
    out = io.BytesIO()
    image_layers.drop_layers(src, out, layers)
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r") as tar:
        return tar.getnames()


def legacy_archive() -> io.BytesIO:
    """The real archive's layout: VERSION, json, layer.tar per layer directory, in name order."""
    members = {}
    for directory, v1_json, size in zip(REAL["layer_dirs"], REAL["layer_json"], (3000, 200), strict=True):
        members[f"{directory}/VERSION"] = b"1.0"
        members[f"{directory}/json"] = v1_json.encode()
        members[f"{directory}/layer.tar"] = b"x" * size
    members["manifest.json"] = b"[]"
    return archive(dict(sorted(members.items())))


def test_chain_ids_are_the_ones_the_engines_layer_store_uses():
    chains = image_layers.chain_ids(REAL["diff_ids"])
    assert chains == [REAL["diff_ids"][0], REAL["top_chain_id"]]


def test_v1_ids_are_the_directory_names_docker_20_10_saved_each_layer_under():
    bottom, top = REAL["layer_json"]
    base_dir, top_dir = REAL["layer_dirs"]
    chains = image_layers.chain_ids(REAL["diff_ids"])
    # Below the top layer Docker computes the ID before it adds "os"; the top layer's has it.
    assert image_layers.v1_id(bottom, chains[0], with_os=False) == base_dir
    assert image_layers.v1_id(top, chains[1], with_os=True) == top_dir
    assert image_layers.v1_id(bottom, chains[1], with_os=False) != base_dir


@pytest.mark.parametrize(
    ("held", "dropped"),
    [
        (0, []),
        (1, ["layer 0"]),
        (2, ["layer 0", "layer 1"]),
    ],
    ids=["nothing-held", "base-held", "all-held"],
)
def test_a_legacy_archive_loses_exactly_the_layer_files_the_receiver_holds(held, dropped):
    chains = image_layers.chain_ids(REAL["diff_ids"])
    layers = image_layers.LayerFilter(REAL["diff_ids"], set(chains[:held]))

    names = names_after(legacy_archive(), layers)

    gone = [f"layer {i}" for i, d in enumerate(REAL["layer_dirs"]) if f"{d}/layer.tar" not in names]
    assert gone == dropped
    assert layers.dropped == held and layers.dropped_bytes == sum((3000, 200)[:held])
    # Everything else arrives: docker load reads the json files, the config and the manifest.
    for directory in REAL["layer_dirs"]:
        assert f"{directory}/json" in names and f"{directory}/VERSION" in names
    assert "manifest.json" in names


def test_a_layer_held_in_another_chain_is_sent():
    """The top layer's content alone (another chain: not on top of this base) is not this layer."""
    other_chain = image_layers.chain_ids(REAL["diff_ids"][1:])
    layers = image_layers.LayerFilter(REAL["diff_ids"], set(other_chain))
    names = names_after(legacy_archive(), layers)
    assert all(f"{d}/layer.tar" in names for d in REAL["layer_dirs"])


def test_oci_layout_blobs_are_dropped_by_diff_id_and_only_when_every_place_of_it_is_held():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    diff_ids = [a, b, a]  # the same content at the bottom and on top
    chains = image_layers.chain_ids(diff_ids)
    members = {
        f"blobs/sha256/{'a' * 64}": b"A" * 100,
        f"blobs/sha256/{'b' * 64}": b"B" * 100,
        f"blobs/sha256/{'c' * 64}": b"{}",  # the config
        "index.json": b"{}",
        "manifest.json": b"[]",
    }

    bottom_two = names_after(archive(members), image_layers.LayerFilter(diff_ids, set(chains[:2])))
    every = names_after(archive(members), image_layers.LayerFilter(diff_ids, set(chains)))

    assert f"blobs/sha256/{'a' * 64}" in bottom_two  # still needed on top
    assert f"blobs/sha256/{'b' * 64}" not in bottom_two
    assert sorted(every) == [f"blobs/sha256/{'c' * 64}", "index.json", "manifest.json"]


def test_layers_and_have_lines_carry_digests_only():
    chains = image_layers.chain_ids(REAL["diff_ids"])
    assert image_layers.parse_line(image_layers.layers_line(chains), "LAYERS") == chains
    assert image_layers.parse_line(image_layers.held_line([]), "HAVE") == []
    assert image_layers.parse_line(image_layers.held_line(chains), "LAYERS") is None
    assert image_layers.parse_line(b"HAVE ../../etc/passwd\n", "HAVE") is None
    assert image_layers.parse_line(b"", "HAVE") is None
