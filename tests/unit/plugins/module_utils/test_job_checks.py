"""Every input the training stack refuses, each named by host and variable, and nothing else."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import (
    StackError,
    assign_ranks,
    check_job,
    check_secret_names,
    checked_job,
    host_path_errors,
    host_paths,
    image_name_error,
    mount_errors,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import Job

THREE = [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)]
IMAGE = "torchswarm/trainer:latest"
NOT_AN_IMAGE = "it is not [registry/]name[:tag][@sha256:digest] in lowercase"
DURATIONS = "is not a duration such as 10s, 1m30s or 500ms"
NUL = "holds a NUL byte, which no argument or environment variable can"


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        ([], "no training nodes: at least one host must run the job"),
        (
            [{"name": "a", "hostname": "a", "node_rank": 0}, {"name": "b", "hostname": "b", "node_rank": 0}],
            "host b: node_rank 0 is also the node_rank of a",
        ),
        (
            [{"name": "a", "hostname": "a", "node_rank": 0}, {"name": "b", "hostname": "b", "node_rank": 2}],
            "node_rank has a gap: 2 training nodes need ranks 0..1, and no host has node_rank 1",
        ),
        (
            [{"name": "a", "hostname": "a", "node_rank": 0}, {"name": "b", "hostname": "b"}],
            "node_rank is set on a but not on b: set it on every training node, or on none to number "
            "them in inventory order",
        ),
        ([{"name": "a", "hostname": "a", "node_rank": -1}], "host a: node_rank -1 is negative"),
        (
            [{"name": "a", "hostname": "a", "nproc_per_node": 0}],
            "host a: nproc_per_node is 0; it must be at least 1",
        ),
        ([{"name": "a", "hostname": ""}], "host a: its swarm hostname is empty"),
        (
            [{"name": "a", "hostname": "same"}, {"name": "b", "hostname": "same"}],
            "host b: its swarm hostname 'same' is also that of a; one training service per swarm node",
        ),
        (
            [{"name": "x.a", "hostname": "h1"}, {"name": "x-a", "hostname": "h2"}],
            "host x-a: its service name 'x-a' is also that of x.a",
        ),
    ],
)
def test_rejected_nodes(nodes, expected):
    _unused, errors = assign_ranks(nodes)
    assert errors == [expected]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (
            {"image": "Torchswarm/Trainer"},
            f"job_image 'Torchswarm/Trainer' is not a valid image name: {NOT_AN_IMAGE}",
        ),
        ({"image": ""}, "job_image '' is not a valid image name: it is empty"),
        (
            {"image": "trainer:bad tag"},
            f"job_image 'trainer:bad tag' is not a valid image name: {NOT_AN_IMAGE}",
        ),
        ({"name": "my job"}, "job_name 'my job' may hold only letters, digits, '_' and '-'"),
        ({"epochs": 0}, "job_epochs is 0; it must be at least 1"),
        ({"snapshot_every": 0}, "job_snapshot_every is 0; it must be at least 1"),
        ({"batch_size": -1}, "job_batch_size is -1; it must be at least 1"),
        ({"master_port": 70000}, "job_master_port 70000 is not a port number"),
        ({"env": {"BAD-NAME": "1"}}, "job_env: 'BAD-NAME' is not an environment variable name"),
        ({"shm_size": "lots"}, "job_shm_size: 'lots' is not a size such as 512m or 2g"),
        ({"memlock": "lots"}, "job_memlock: 'lots' is not a size such as 512m or 2g or unlimited"),
        (
            {"network_mode": "host"},
            "host node0: on the host network the master address is node rank 0's own address, and it "
            "has none; set job_master_addr",
        ),
        ({"restart_delay": "10"}, f"job_restart_delay '10' {DURATIONS}"),
        ({"stop_grace_period": "1 minute"}, f"job_stop_grace_period '1 minute' {DURATIONS}"),
        ({"master_addr": "node 0"}, "job_master_addr 'node 0' is neither an IP address nor a hostname"),
        ({"master_addr": "-node0"}, "job_master_addr '-node0' is neither an IP address nor a hostname"),
        ({"env": {"A": "x\0y"}}, f"job_env A: {NUL}"),
        ({"trainer_args": ("--model", "gpt\0", "\0")}, f"job_trainer_args: {NUL}"),
        ({"min_nodes": 4}, "job_min_nodes is 4; it must be between 1 and the 3 training hosts"),
        ({"peer_timeout": 0}, "job_peer_timeout is 0; it must be at least 1 (seconds)"),
        ({"start_attempts": 0}, "job_start_attempts is 0; it must be at least 1"),
        ({"cpus": 0.001}, "job_cpus is 0.001; Docker's CPU limit is at least 0.01 (CPUs)"),
    ],
)
def test_rejected_jobs(job, expected):
    nodes, _unused = assign_ranks(THREE)
    assert check_job(Job(**{"image": IMAGE, **job}), nodes) == [expected]


def test_a_node_outside_the_swarm_is_named():
    nodes, _unused = assign_ranks(THREE)
    errors = check_job(Job(image=IMAGE), nodes, swarm_hostnames=["node0", "node1"])
    assert errors == [
        "host node2: its swarm hostname 'node2' is not a node of the swarm (the swarm has node0, node1); "
        "run the cluster playbook for it first"
    ]
    assert check_job(Job(image=IMAGE), nodes, swarm_hostnames=["node0", "node1", "node2", "x"]) == []


@pytest.mark.parametrize(
    "image",
    [
        "trainer",
        "torchswarm/trainer:latest",
        "registry.example.com:5000/ml/trainer:v1.2",
        "a/b@sha256:" + "0" * 64,
    ],
)
def test_valid_image_names(image):
    assert image_name_error(image) is None


@pytest.mark.parametrize(
    "job",
    [
        {"restart_delay": "1m30s", "stop_grace_period": "500ms"},
        {"master_addr": "10.0.0.1"},
        {"master_addr": "rdzv.example.com"},
        {"memlock": "unlimited", "shm_size": "2gb"},
        {"memlock": ""},
    ],
)
def test_accepted_jobs(job):
    nodes, _unused = assign_ranks(THREE)
    assert check_job(Job(image=IMAGE, **job), nodes) == []


def test_secret_names_are_environment_names_apart_from_job_env():
    job = Job(image=IMAGE, env={"TOKEN": "x"})
    assert check_secret_names(["GOOD_1", "bad-name", "TOKEN", "X" * 60], job) == [
        "job_secrets: 'bad-name' is not an environment variable name",
        "job_secrets: 'TOKEN' is also a key of job_env; a variable has one source",
        f"job_secrets: '{'X' * 60}' is too long with job_name 'ddp' (64 characters in all)",
    ]


def test_nodes_holding_different_images_under_one_tag_are_an_error():
    nodes, _unused = assign_ranks(
        [{**n, "image_id": f"sha256:{'b' if n['name'] == 'node2' else 'a'}{'0' * 63}"} for n in THREE]
    )
    assert check_job(Job(image=IMAGE), nodes) == [
        f"job_image '{IMAGE}' is not the same image on every training node "
        f"(sha256:a00000000000 on node0, node1; sha256:b00000000000 on node2); run the image role"
    ]


def test_checked_job_gathers_every_problem_across_nodes_job_secrets_files_and_engine():
    gpus = {"node0": 2, "node1": 2, "node2": 0}
    nodes = [{**THREE[0], "nproc_per_node": 3}, THREE[1], THREE[2]]
    job = Job(image=IMAGE, epochs=0, script="my_ddp.py")
    with pytest.raises(StackError) as raised:
        checked_job(job, nodes, gpus, "20.10.24+dfsg1", ["bad-name"], {"other.py": "x"})
    assert raised.value.errors == [
        "host node0: nproc_per_node 3 needs 3 GPUs (one per process), but its swarm node advertises 2",
        "job_epochs is 0; it must be at least 1",
        "job_secrets: 'bad-name' is not an environment variable name",
        "job_script 'my_ddp.py' is not among the files of job_script_src (other.py); set job_script to the "
        "one to run",
        "GPU reservations on the overlay network need Docker Engine 23.0.2 or later on the managers; this "
        "manager runs 20.10.24+dfsg1, which rejects such tasks over and over (moby/moby#44378). Upgrade "
        "Docker (docker_package_source: docker), or set job_network_mode: host",
    ]


def test_checked_job_returns_the_nodes_in_rank_order_with_their_gpus():
    nodes = [{**THREE[0], "node_rank": 1}, {**THREE[1], "node_rank": 0}]
    ranked = checked_job(Job(image=IMAGE), nodes, {"node0": 2, "node1": 0}, "26.1.5")
    assert [(n.name, n.node_rank, n.gpus, n.nproc_per_node) for n in ranked] == [
        ("node1", 0, 0, 1),
        ("node0", 1, 2, 2),
    ]


@pytest.mark.parametrize(
    ("mount", "expected"),
    [
        (
            {"source": "/srv/d", "target": "data"},
            "job_mounts[0]: target 'data' is not an absolute path such as /data",
        ),
        (
            {"source": "/srv/d", "target": "/data/"},
            "job_mounts[0]: target '/data/' is not an absolute path such as /data",
        ),
        (
            {"source": "/srv/d", "target": "/"},
            "job_mounts[0]: target '/' is not an absolute path such as /data",
        ),
        (
            {"source": "/srv/d", "target": "/workspace"},
            "job_mounts[0]: target '/workspace' collides with the job's own mount at /workspace",
        ),
        (
            {"source": "/srv/d", "target": "/workspace/data"},
            "job_mounts[0]: target '/workspace/data' collides with the job's own mount at /workspace",
        ),
        (
            {"source": "/srv/d", "target": "/run"},
            "job_mounts[0]: target '/run' collides with the job's own mount at /run/secrets",
        ),
        (
            {"source": "/srv/d", "target": "/snapshots"},
            "job_mounts[0]: target '/snapshots' collides with the job's own mount at /snapshots",
        ),
        (
            {"source": "srv/d", "target": "/data"},
            "job_mounts[0]: source 'srv/d' is not an absolute path on the hosts",
        ),
        ({"target": "/data"}, "job_mounts[0]: source 'None' is not an absolute path on the hosts"),
        (
            {"type": "volume", "source": "my vol", "target": "/v"},
            "job_mounts[0]: source 'my vol' is not a volume name (letters, digits, '_', '.', '-')",
        ),
        ({"type": "tmpfs", "target": "/t"}, "job_mounts[0]: a tmpfs needs a size such as 512m or 8g (size)"),
        (
            {"type": "tmpfs", "target": "/t", "size": "1g", "read_only": True},
            "job_mounts[0]: a read-only tmpfs would stay empty; leave read_only unset",
        ),
        (
            {"type": "tmpfs", "target": "/t", "size": "1g", "source": "/x"},
            "job_mounts[0]: a tmpfs has no source",
        ),
        ({"source": "/srv/d", "target": "/d", "size": "1g"}, "job_mounts[0]: size is for a tmpfs only"),
        (
            {"source": "/srv/d", "target": "/d", "driver_opts": {"type": "nfs"}},
            "job_mounts[0]: driver_opts are for a named volume only",
        ),
    ],
)
def test_each_bad_mount_is_named(mount, expected):
    assert mount_errors([mount]) == [expected]
    # The stack module refuses it too, before deploying.
    assert f"job_{expected}" not in check_job(Job(image=IMAGE, mounts=[mount]), [])
    assert expected in check_job(Job(image=IMAGE, mounts=[mount]), [])


def test_mounts_may_not_nest_in_each_other_and_good_ones_pass():
    good = [
        {"source": "/srv/datasets", "target": "/datasets"},
        {"type": "volume", "source": "imagenet", "target": "/imagenet", "driver_opts": {"type": "nfs"}},
        {"type": "tmpfs", "target": "/scratch", "size": "8g"},
    ]
    assert mount_errors(good) == []
    assert mount_errors([*good, {"source": "/x", "target": "/datasets/extra"}]) == [
        "job_mounts[3]: target '/datasets/extra' collides with job_mounts[0] mount at /datasets"
    ]


def test_the_host_paths_asked_about_are_the_jobs_and_junk_is_left_to_the_checks():
    mounts = [
        {"source": "/srv/a", "target": "/a"},
        {"type": "bind", "source": "/srv/b", "target": "/b"},
        {"type": "volume", "source": "v", "target": "/v"},
        {"type": "bind", "source": "relative", "target": "/r"},
        "not a mount",
    ]
    assert host_paths({"job_mounts": mounts, "job_snapshot_dir": "/mnt/ckpt"}) == [
        "/srv/a",
        "/srv/b",
        "/mnt/ckpt",
    ]
    assert host_paths({"job_mounts": "junk", "job_snapshot_dir": "rel"}) == [] and host_paths(None) == []


def test_a_host_path_a_host_lacks_or_cannot_use_is_named():
    mounts = [
        {"source": "/gone", "target": "/a"},
        {"source": "/file", "target": "/b"},
        {"source": "/secret", "target": "/c"},
        {"source": "/ro", "target": "/d", "read_only": False},
        {"source": "/ok", "target": "/e", "read_only": False},
        {"type": "volume", "source": "v", "target": "/v"},
    ]
    paths = {
        "/gone": {"exists": False, "directory": False, "readable": False, "writable": False},
        "/file": {"exists": True, "directory": False, "readable": True, "writable": True},
        "/secret": {"exists": True, "directory": True, "readable": False, "writable": False},
        "/ro": {"exists": True, "directory": True, "readable": True, "writable": False},
        "/ok": {"exists": True, "directory": True, "readable": True, "writable": True},
    }
    job = Job(image=IMAGE, mounts=mounts, snapshot_dir="/ro")
    assert host_path_errors(job, paths) == [
        "job_mounts[0].source '/gone' does not exist",
        "job_mounts[1].source '/file' is not a directory",
        "job_mounts[2].source '/secret' is not readable",
        "job_mounts[3].source '/ro' is not writable, and read_only is false",
        "job_snapshot_dir '/ro' is not writable",
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"snapshot_dir": "ckpt"}, "job_snapshot_dir 'ckpt' is not an absolute path on the hosts"),
        (
            {"snapshot_dir": "/ckpt", "snapshot_volume": "v"},
            "job_snapshot_dir and job_snapshot_volume are both set; snapshots go to one of them",
        ),
        ({"snapshot_keep": 0}, "job_snapshot_keep is 0; it must be at least 1"),
    ],
)
def test_snapshot_options_that_cannot_work_are_named(options, expected):
    assert check_job(Job(image=IMAGE, **options), []) == [expected]


def test_a_staged_datasets_target_is_checked_like_a_mount_and_only_when_one_is_staged():
    digest = "sha256:" + "a" * 64
    mounts = [{"source": "/srv/datasets", "target": "/data/extra"}]
    assert mount_errors(mounts) == []
    assert mount_errors(mounts, "/data") == [
        "job_mounts[0]: target '/data/extra' collides with job_data_target's mount at /data"
    ]
    assert mount_errors([], "/workspace/data") == [
        "job_data_target '/workspace/data' collides with the job's own mount at /workspace"
    ]
    assert mount_errors([], "data") == ["job_data_target 'data' is not an absolute path such as /data"]
    staged = Job(image=IMAGE, data_digest=digest, data_target="/snapshots", data_dir="relative")
    assert check_job(staged, []) == [
        "job_data_target '/snapshots' collides with the job's own mount at /snapshots",
        "job_data_dir 'relative' is not an absolute path on the hosts",
    ]
    assert check_job(Job(image=IMAGE, data_target="/snapshots"), []) == []  # nothing staged
