"""The training stack, rendered from tables of host vars, and every input it refuses."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import assign_ranks
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import Job
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    HASH_LABEL,
    RENDEZVOUS_SERVICE,
    redacted,
    render_stack,
    script_of,
    service_hashes,
    size_bytes,
    stack_from_text,
    stack_hash,
    stack_text,
    without_hash,
)

THREE = [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)]
IMAGE = "torchswarm/trainer:latest"


# What node0's launcher gets for the rounds of an elastic job on three hosts.
ELASTIC_NODE0 = {
    "TORCHSWARM_MAX_NODES": "3",
    "TORCHSWARM_MIN_NODES": "2",
    "TORCHSWARM_NODE": "node0",
    "TORCHSWARM_NODE_ADDR": "ddp_node0",  # the stack's own, not another stack's node0
    "TORCHSWARM_NODE_ORDER": "0",
    "TORCHSWARM_PEER_TIMEOUT": "30",
    "TORCHSWARM_RENDEZVOUS": "ddp_rendezvous:29400",
}


def rank_services(stack: dict) -> dict:
    """The services of the ranks, without the rendezvous store's."""
    return {name: s for name, s in stack["services"].items() if name != RENDEZVOUS_SERVICE}


def rendered(nodes=THREE, **job) -> dict:
    ranked, errors = assign_ranks(nodes)
    assert errors == []
    return render_stack(Job(image=job.pop("image", IMAGE), **job), ranked)


def test_the_guides_command_line_per_node():
    stack = rendered()
    assert list(rank_services(stack)) == ["node0", "node1", "node2"]
    assert stack["services"]["node1"]["command"] == [
        "torchrun",
        "--nproc_per_node=1",
        "--nnodes=3",
        "--node_rank=1",
        "--master_addr=node0",
        "--master_port=12355",
        "training_code.py",
        "10",
        "2",
        "--batch_size",
        "32",
    ]


def test_each_service_is_pinned_to_its_node_and_resolved_by_dns_round_robin():
    for name, service in rank_services(rendered()).items():
        deploy = service["deploy"]
        assert deploy["placement"]["constraints"] == [f"node.hostname == {name}"]
        assert deploy["endpoint_mode"] == "dnsrr"
        assert deploy["replicas"] == 1
        assert deploy["restart_policy"]["condition"] == "on-failure"
        assert service["networks"] == ["ddp-net"]


def test_shm_is_a_sized_tmpfs_and_snapshots_a_named_volume():
    stack = rendered(shm_size="2g", name="exp1")
    volumes = stack["services"]["node0"]["volumes"]
    assert {"type": "tmpfs", "target": "/dev/shm", "tmpfs": {"size": 2 * 1024**3}} in volumes
    assert {"type": "volume", "source": "snapshots", "target": "/snapshots"} in volumes
    assert stack["volumes"] == {"snapshots": {"name": "exp1-snapshots"}}
    assert stack["networks"] == {"ddp-net": {"external": True, "name": "ddp-net"}}


def test_ranks_follow_inventory_order_unless_every_node_sets_one():
    nodes = [
        {"name": "a", "hostname": "ha", "node_rank": 2},
        {"name": "b", "hostname": "hb", "node_rank": 0, "nproc_per_node": 4},
        {"name": "c", "hostname": "hc", "node_rank": 1},
    ]
    stack = rendered(nodes)
    assert list(rank_services(stack)) == ["b", "c", "a"]
    assert "--master_addr=b" in stack["services"]["a"]["command"]
    assert "--nproc_per_node=4" in stack["services"]["b"]["command"]
    assert stack["services"]["a"]["deploy"]["labels"]["io.torchswarm.node-rank"] == "2"


def test_fqdn_hosts_get_service_names_without_dots():
    stack = rendered([{"name": "gpu01.example.com", "hostname": "gpu01"}])
    assert list(rank_services(stack)) == ["gpu01-example-com"]
    assert "--master_addr=gpu01-example-com" in stack["services"]["gpu01-example-com"]["command"]


def test_environment_trainer_args_and_subnet():
    stack = rendered(env={"NCCL_IB_DISABLE": 1}, trainer_args=("--model", "gpt"), subnet="10.42.0.0/24")
    service = stack["services"]["node0"]
    assert service["environment"] == {
        "NCCL_IB_DISABLE": "1",
        "TORCHSWARM_GENERATION": service["labels"][HASH_LABEL],
        "TORCHSWARM_OUTPUT_DIR": f"/snapshots/output/{service['labels'][HASH_LABEL]}",
        "TORCHSWARM_SNAPSHOT_DIR": "/snapshots",
        "TORCHSWARM_SUBNET": "10.42.0.0/24",
        **ELASTIC_NODE0,
    }
    assert service["command"][-2:] == ["--model", "gpt"]


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({}, "1"),  # the overlay carries only TCP
        ({"network_mode": "host"}, None),  # NCCL's own choice on the hosts' NICs
        ({"network_mode": "host", "nccl_ib_disable": True}, "1"),
        ({"nccl_ib_disable": False}, "0"),
        ({"nccl_ib_disable": False, "env": {"NCCL_IB_DISABLE": "1"}}, "1"),  # job_env wins
    ],
)
def test_nccl_ib_disable_defaults_by_network_mode(job, expected):
    nodes = [{"name": "n0", "hostname": "n0", "addr": "192.0.2.10"}]
    assert rendered(nodes, **job)["services"]["n0"]["environment"].get("NCCL_IB_DISABLE") == expected


def test_host_network_uses_rank0s_address_as_master():
    nodes = [{"name": "n0", "hostname": "n0", "addr": "192.0.2.10"}, {"name": "n1", "hostname": "n1"}]
    stack = rendered(nodes, network_mode="host", subnet="10.42.0.0/24")
    service = stack["services"]["n1"]
    assert service["networks"] == ["host"]
    assert stack["networks"] == {"host": {"external": True, "name": "host"}}
    assert "--master_addr=192.0.2.10" in service["command"]
    assert "TORCHSWARM_SUBNET" not in service["environment"]


def test_the_hash_label_changes_with_the_job_and_only_with_it():
    first, same, other = rendered(), rendered(), rendered(epochs=20)
    digest = first["services"]["node0"]["deploy"]["labels"][HASH_LABEL]
    assert {s["deploy"]["labels"][HASH_LABEL] for s in first["services"].values()} == {digest}
    assert same["services"]["node0"]["deploy"]["labels"][HASH_LABEL] == digest
    assert other["services"]["node0"]["deploy"]["labels"][HASH_LABEL] != digest


def test_any_change_replaces_every_services_task_even_one_whose_command_is_unchanged():
    # node1 and node2 swap ranks; node0's command stays the same, its task template must not.
    swapped = [dict(THREE[0], node_rank=0), dict(THREE[1], node_rank=2), dict(THREE[2], node_rank=1)]
    numbered = [dict(n, node_rank=i) for i, n in enumerate(THREE)]
    before, after = rendered(numbered), rendered(swapped)
    assert before["services"]["node0"]["command"] == after["services"]["node0"]["command"]
    assert before["services"]["node0"]["labels"] != after["services"]["node0"]["labels"]
    digest = after["services"]["node0"]["deploy"]["labels"][HASH_LABEL]
    assert {HASH_LABEL: digest} == after["services"]["node2"]["labels"]


def test_a_deployment_is_compared_by_each_services_hash_and_what_a_person_compares_leaves_it_out():
    stack = rendered()
    digest = stack["services"]["node0"]["labels"][HASH_LABEL]
    assert service_hashes(stack) == dict.fromkeys(["node0", "node1", "node2", "rendezvous"], digest)
    bare = without_hash(stack)
    assert digest not in json.dumps(bare)
    assert bare["services"]["node0"]["command"] == stack["services"]["node0"]["command"]
    assert without_hash(rendered(epochs=20)) != bare and without_hash(rendered()) == bare


def test_the_script_a_stack_runs_is_read_back_from_it():
    assert script_of(rendered()) == "training_code.py"
    assert script_of(rendered(script="my_ddp.py", script_args=("--lr", "3e-4"))) == "my_ddp.py"
    assert script_of({}) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1g", 1024**3), ("512m", 512 * 1024**2), ("64MB", 64 * 1024**2), ("2gb", 2 * 1024**3), ("512", 512)],
)
def test_sizes(value, expected):
    assert size_bytes(value) == expected


@pytest.mark.parametrize("value", ["lots", "10x", "-1g", ""])
def test_what_is_not_a_size(value):
    with pytest.raises(ValueError):
        size_bytes(value)


def test_script_args_replace_the_trainers_arguments():
    stack = rendered(
        script="allreduce_check.py", script_args=("--sizes", "4K"), trainer_args=("--model", "gpt")
    )
    command = stack["services"]["node1"]["command"]
    assert command[command.index("allreduce_check.py") :] == ["allreduce_check.py", "--sizes", "4K"]
    assert "--nnodes=3" in command and "--node_rank=1" in command


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ({}, None),  # overlay: sockets only
        ({"network_mode": "host"}, {"memlock": {"soft": -1, "hard": -1}}),
        ({"network_mode": "host", "memlock": ""}, None),
        ({"memlock": "64m"}, {"memlock": {"soft": 64 * 1024**2, "hard": 64 * 1024**2}}),
    ],
)
def test_memlock_is_unlimited_on_the_host_network_unless_set(job, expected):
    nodes = [{"name": "n0", "hostname": "n0", "addr": "192.0.2.10"}]
    assert rendered(nodes, **job)["services"]["n0"].get("ulimits") == expected


DOLLARS = "pa$$w0rd$HOME ${X} ${X:?y} $"


def test_the_stack_file_doubles_every_dollar_and_reads_back_byte_for_byte():
    stack = rendered(env={"PASSWORDISH": DOLLARS}, trainer_args=("--tag", "$USER"))
    text = stack_text(stack)
    assert "pa$$$$w0rd$$HOME $${X} $${X:?y} $$" in text
    assert stack_from_text(text) == stack
    assert stack_from_text("") == {}


def test_the_stack_file_keeps_characters_outside_the_bmp_as_they_are():
    text = stack_text(rendered(trainer_args=("--tag", "run-\U0001f680")))
    assert "run-\U0001f680" in text and "\\ud83d" not in text


def test_redacted_hides_job_env_values_and_marks_changed_ones():
    before = rendered(env={"A": "old", "B": "same"})
    after = rendered(env={"A": "new", "B": "same", "NCCL_IB_DISABLE": "0"})
    env = redacted(after, before)["services"]["node0"]["environment"]
    assert env == {
        "A": "<hidden> (changed)",
        "B": "<hidden>",
        "NCCL_IB_DISABLE": "0",
        "TORCHSWARM_GENERATION": after["services"]["node0"]["labels"][HASH_LABEL],
        "TORCHSWARM_OUTPUT_DIR": after["services"]["node0"]["environment"]["TORCHSWARM_OUTPUT_DIR"],
        "TORCHSWARM_SNAPSHOT_DIR": "/snapshots",
        **ELASTIC_NODE0,
    }
    assert redacted(before)["services"]["node1"]["environment"]["A"] == "<hidden>"
    assert after["services"]["node0"]["environment"]["A"] == "new"  # the stack itself is untouched


def test_secrets_are_mounted_named_in_the_environment_and_part_of_the_hash():
    ranked, _unused = assign_ranks(THREE)
    job = Job(image=IMAGE)
    stack = render_stack(job, ranked, {"TOKEN": "ddp_TOKEN_aaaa", "KEY": "ddp_KEY_bbbb"})
    service = stack["services"]["node2"]
    assert service["secrets"] == [
        {"source": "KEY", "target": "KEY", "mode": 0o400},
        {"source": "TOKEN", "target": "TOKEN", "mode": 0o400},
    ]
    assert service["environment"]["TORCHSWARM_SECRETS"] == "KEY,TOKEN"
    assert stack["secrets"] == {
        "KEY": {"external": True, "name": "ddp_KEY_bbbb"},
        "TOKEN": {"external": True, "name": "ddp_TOKEN_aaaa"},
    }
    rotated = render_stack(job, ranked, {"TOKEN": "ddp_TOKEN_cccc", "KEY": "ddp_KEY_bbbb"})
    assert (
        rotated["services"]["node0"]["deploy"]["labels"][HASH_LABEL]
        != service["deploy"]["labels"][HASH_LABEL]
    )
    assert "secrets" not in render_stack(job, ranked)["services"]["node0"]


def test_the_generation_every_launcher_reads_is_the_stack_hash_and_not_part_of_it():
    stack = rendered()
    digest = stack["services"]["node0"]["labels"][HASH_LABEL]
    assert {s["environment"]["TORCHSWARM_GENERATION"] for s in rank_services(stack).values()} == {digest}
    assert stack_hash(stack) == digest


def test_an_image_rebuilt_under_the_same_tag_is_a_new_deployment():
    def digest(image_id):
        stack = rendered([{**n, "image_id": image_id} for n in THREE])
        assert stack["services"]["node1"]["environment"].get("TORCHSWARM_IMAGE_ID", "") == image_id
        return stack["services"]["node0"]["labels"][HASH_LABEL]

    assert digest("sha256:" + "a" * 64) != digest("sha256:" + "b" * 64)
    assert digest("sha256:" + "a" * 64) == digest("sha256:" + "a" * 64)


MOUNTS = [
    {"source": "/srv/datasets", "target": "/datasets"},
    {"type": "bind", "source": "/scratch/ckpt", "target": "/ckpt", "read_only": False},
    {
        "type": "volume",
        "source": "imagenet",
        "target": "/imagenet",
        "driver_opts": {"type": "nfs", "o": "addr=10.0.0.5,nfsvers=4", "device": ":/export/imagenet"},
    },
    {"type": "tmpfs", "target": "/scratch", "size": "1g"},
]


def test_mounts_are_the_stacks_long_volume_syntax_with_named_volumes_declared():
    stack = rendered(mounts=MOUNTS)
    volumes = stack["services"]["node0"]["volumes"]
    assert volumes[2:] == [
        {"type": "bind", "source": "/srv/datasets", "target": "/datasets", "read_only": True},
        {"type": "bind", "source": "/scratch/ckpt", "target": "/ckpt", "read_only": False},
        {"type": "volume", "source": "mount2", "target": "/imagenet", "read_only": True},
        {"type": "tmpfs", "target": "/scratch", "tmpfs": {"size": 1024**3}},
    ]
    assert stack["volumes"]["mount2"] == {
        "name": "imagenet",
        "driver_opts": {"type": "nfs", "o": "addr=10.0.0.5,nfsvers=4", "device": ":/export/imagenet"},
    }
    assert stack_hash(without_hash(stack)) != stack_hash(without_hash(rendered(mounts=MOUNTS[:1])))


def docker_reads(stack: dict, tmp_path) -> dict:
    """The stack file as Docker's own stack parser reads it."""
    path = tmp_path / "stack.yml"
    path.write_text(stack_text(stack))
    out = subprocess.run(
        ["docker", "stack", "config", "--compose-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_docker_reads_the_mounts_as_rendered(tmp_path):
    """NFS cannot be mounted on this machine (no NFS client in its kernel): the NFS volume is
    checked as Docker's own stack parser reads it, not mounted."""
    config = docker_reads(rendered(mounts=MOUNTS), tmp_path)
    assert config["volumes"]["mount2"]["driver_opts"]["device"] == ":/export/imagenet"
    assert {"type": "tmpfs", "target": "/scratch", "tmpfs": {"size": 1024**3}} in config["services"]["node0"][
        "volumes"
    ]
    binds = [v for v in config["services"]["node1"]["volumes"] if v["type"] == "bind"]
    assert [(v["source"], v.get("read_only", False)) for v in binds] == [
        ("/srv/datasets", True),
        ("/scratch/ckpt", False),
    ]


def test_a_cpus_caps_every_rank_service_and_not_the_rendezvous_store():
    unlimited = rendered()
    assert all("resources" not in s["deploy"] for s in unlimited["services"].values())
    stack = rendered(cpus=0.25)
    for name, service in stack["services"].items():
        limits = service["deploy"].get("resources", {}).get("limits")
        assert limits == (None if name == RENDEZVOUS_SERVICE else {"cpus": "0.25"}), name
    assert stack_hash(without_hash(stack)) != stack_hash(without_hash(unlimited))


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_docker_reads_the_cpus_beside_a_gpu_reservation(tmp_path):
    ranked, errors = assign_ranks([{"name": "node0", "hostname": "node0", "gpus": 2}])
    assert errors == []
    config = docker_reads(render_stack(Job(image=IMAGE, cpus=1.5), ranked), tmp_path)
    resources = config["services"]["node0"]["deploy"]["resources"]
    assert resources["limits"]["cpus"] in ("1.5", 1.5)
    assert resources["reservations"]["generic_resources"] == [
        {"discrete_resource_spec": {"kind": "GPU", "value": 2}}
    ]


def test_a_snapshot_dir_is_a_writable_host_path_with_a_directory_per_job_and_node():
    stack = rendered(snapshot_dir="/mnt/ckpt", snapshot_keep=3, name="exp1")
    assert "snapshots" not in stack["volumes"]
    for host in ("node0", "node1"):
        service = stack["services"][host]
        assert {"type": "bind", "source": "/mnt/ckpt", "target": "/snapshots", "read_only": False} in service[
            "volumes"
        ]
        assert service["environment"]["TORCHSWARM_SNAPSHOT_DIR"] == f"/snapshots/exp1/{host}"
        assert service["environment"]["TORCHSWARM_SNAPSHOT_KEEP"] == "3"
        generation = service["labels"][HASH_LABEL]
        assert (
            service["environment"]["TORCHSWARM_OUTPUT_DIR"] == f"/snapshots/exp1/{host}/output/{generation}"
        )
    default = rendered()["services"]["node0"]["environment"]
    assert default["TORCHSWARM_SNAPSHOT_DIR"] == "/snapshots" and "TORCHSWARM_SNAPSHOT_KEEP" not in default


def test_start_attempts_reach_every_rank_only_when_not_the_default_so_a_running_job_stays():
    assert "TORCHSWARM_START_ATTEMPTS" not in rendered()["services"]["node0"]["environment"]
    services = rendered(start_attempts=5)["services"]
    assert [services[host]["environment"]["TORCHSWARM_START_ATTEMPTS"] for host in ("node0", "node1")] == [
        "5",
        "5",
    ]


def test_a_staged_dataset_is_mounted_read_only_where_every_rank_is_told_and_its_digest_redeploys():
    digest = "sha256:" + "a" * 64
    stack = rendered(name="exp1", data_digest=digest)
    for host in ("node0", "node1", "node2"):
        service = stack["services"][host]
        assert service["volumes"][-1] == {
            "type": "bind",
            "source": "/var/lib/torchswarm/data/exp1/sha256-" + "a" * 64,
            "target": "/data",
            "read_only": True,
        }
        assert service["environment"]["TORCHSWARM_DATA_DIR"] == "/data"
        assert service["environment"]["TORCHSWARM_DATA_DIGEST"] == digest
    moved = rendered(name="exp1", data_digest=digest, data_dir="/nvme/ds", data_target="/ds")
    assert moved["services"]["node0"]["volumes"][-1]["source"] == "/nvme/ds/sha256-" + "a" * 64
    assert moved["services"]["node0"]["environment"]["TORCHSWARM_DATA_DIR"] == "/ds"
    other = rendered(name="exp1", data_digest="sha256:" + "b" * 64)
    assert stack_hash(without_hash(stack)) != stack_hash(without_hash(other))
    # Without a dataset staged, nothing of it: a stack deployed before stays the same.
    plain = rendered(name="exp1", data_dir="/nvme/ds")
    assert not any("DATA" in k for k in plain["services"]["node0"]["environment"])
    assert all(v["target"] != "/data" for v in plain["services"]["node0"]["volumes"])
