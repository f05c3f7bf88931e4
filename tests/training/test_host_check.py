"""What a rank's container got, as the launcher checks it before torchrun starts."""

from __future__ import annotations

import os
import resource

from torchswarm import host_check

GOOD = {
    "host": "node1",
    "shm_bytes": 1 << 30,
    "memlock": resource.RLIM_INFINITY,
    "nofile": 1048576,
    "gpus_reserved": 0,
    "gpus_visible": 0,
    "cuda_build": False,
    "interface": "eth1",
}


def test_a_host_as_the_stack_asked_gets_one_line_and_no_warning():
    line, warnings, refused = host_check.verdict(GOOD)
    assert line == "/dev/shm 1.0 GiB, memlock unlimited, open files 1048576, GPUs 0 visible, interface eth1"
    assert warnings == [] and refused is None


def test_what_the_swarm_dropped_is_a_warning_naming_the_setting():
    _unused, warnings, refused = host_check.verdict({**GOOD, "shm_bytes": 64 << 20, "nofile": 1024})
    assert warnings == [
        "/dev/shm is 64 MiB: DataLoader workers fail with bus errors on large batches "
        "(job_shm_size, at least 512 MiB)",
        "open files are limited to 1024: many workers or peers run out",
    ]
    assert refused is None
    gpu = {**GOOD, "gpus_reserved": 2, "gpus_visible": 2, "cuda_build": True, "memlock": 65536}
    line, warnings, refused = host_check.verdict(gpu)
    assert "GPUs 2 visible of 2 reserved" in line and refused is None
    assert warnings == ["memlock is 65536, not unlimited: NCCL over InfiniBand may fail"]


def test_reserved_gpus_that_are_not_visible_refuse_the_job_and_a_cpu_build_only_warns():
    _unused, _unused, refused = host_check.verdict({**GOOD, "gpus_reserved": 2, "cuda_build": True})
    assert refused is not None and refused.startswith(
        "the swarm reserved 2 GPU(s) for this rank but 0 are visible"
    )
    _unused, warnings, refused = host_check.verdict({**GOOD, "gpus_reserved": 2})
    assert refused is None
    assert warnings == ["the image's torch is a CPU build: the 2 reserved GPU(s) go unused"]


def test_facts_are_read_from_this_container():
    environ = {"DOCKER_RESOURCE_GPU": "GPU-a,GPU-b", "TORCHSWARM_NODE": "node3", "GLOO_SOCKET_IFNAME": "lo"}
    found = host_check.facts(environ, 0, False)
    stat = os.statvfs("/dev/shm")
    assert found["shm_bytes"] == stat.f_blocks * stat.f_frsize
    assert found["nofile"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert (found["host"], found["gpus_reserved"], found["interface"]) == ("node3", 2, "lo")
    record = host_check.record(found)
    assert record["event"] == "host_check" and record["line"].startswith("/dev/shm ")
