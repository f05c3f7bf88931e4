"""GPUs from nvidia-smi to daemon.json and back from the swarm's node description."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import (
    advertised_gpus,
    gpu_uuids,
    node_generic_resources,
    overlay_gpu_engine_error,
)

SMI = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-3b9a1c2d-0000-1111-2222-333344445555)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-7f00aa11-6666-7777-8888-9999aaaabbbb)
  MIG 3g.40gb     Device  0: (UUID: MIG-0c3b2a19-1234-5678-9abc-def012345678)
"""


def test_whole_gpus_are_read_from_nvidia_smi_and_mig_devices_skipped():
    assert gpu_uuids(SMI) == [
        "GPU-3b9a1c2d-0000-1111-2222-333344445555",
        "GPU-7f00aa11-6666-7777-8888-9999aaaabbbb",
    ]


def test_no_gpus_when_nvidia_smi_says_something_else():
    assert gpu_uuids("") == []
    assert gpu_uuids("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.") == []


def test_daemon_json_entries_use_the_kind_the_runtime_reads():
    assert node_generic_resources(["GPU-a", "GPU-b"]) == ["GPU=GPU-a", "GPU=GPU-b"]


def test_advertised_gpus_counts_named_and_discrete_gpus_only():
    node = {
        "Description": {
            "Resources": {
                "GenericResources": [
                    {"NamedResourceSpec": {"Kind": "GPU", "Value": "GPU-a"}},
                    {"NamedResourceSpec": {"Kind": "GPU", "Value": "GPU-b"}},
                    {"DiscreteResourceSpec": {"Kind": "GPU", "Value": 2}},
                    {"NamedResourceSpec": {"Kind": "FPGA", "Value": "x"}},
                ]
            }
        }
    }
    assert advertised_gpus(node) == 4
    assert advertised_gpus({"Description": {"Resources": {"GenericResources": None}}}) == 0
    assert advertised_gpus({}) == 0


@pytest.mark.parametrize(
    ("version", "refused"),
    [
        ("20.10.24+dfsg1", True),
        ("23.0.1", True),
        ("23.0.2", False),
        ("23.0.10", False),
        ("26.1.5+dfsg1", False),
        ("27.3", False),
        ("28", False),
    ],
)
def test_engines_before_23_0_2_reject_gpu_tasks_on_the_overlay(version, refused):
    assert (overlay_gpu_engine_error(version) is not None) == refused


@pytest.mark.parametrize("version", ["dev", "", "  "])
def test_an_unreadable_engine_version_is_let_through(version):
    assert overlay_gpu_engine_error(version) is None
