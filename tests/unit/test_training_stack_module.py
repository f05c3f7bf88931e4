"""The training_stack module, with the docker CLI faked at its boundary (run_command)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.torchswarm.ddp.plugins.modules import training_stack
from module_runner import run_module


class FakeSwarm:
    """Just enough of `docker` on a manager: nodes, a stack's services and their labels."""

    def __init__(self, hostnames=("node0", "node1", "node2")) -> None:
        self.hostnames = list(hostnames)
        self.gpus: dict[str, list[str]] = {}  # hostname -> the GPU UUIDs it advertises
        self.engine = "26.1.5"
        self.services: dict[str, dict] = {}  # full name -> labels
        self.secrets: dict[str, dict] = {}  # name -> {"labels": ..., "data": ...}
        self.configs: dict[str, dict] = {}  # the same, for swarm configs
        self.calls: list[list[str]] = []
        self.stdin: list[str] = []

    def __call__(self, args, data=None, **kwargs):
        args = args[1:]
        self.calls.append(args)
        if data is not None:
            self.stdin.append(data)
        if args[:2] == ["node", "ls"]:
            return 0, "\n".join(f"id{i} {h}" for i, h in enumerate(self.hostnames)), ""
        if args[:1] == ["version"]:
            return 0, self.engine + "\n", ""
        if args[:2] == ["node", "inspect"]:
            return 0, json.dumps([self.node(int(i.removeprefix("id"))) for i in args[2:]]), ""
        if args[:2] == ["service", "ls"]:
            return 0, "\n".join(self.services), ""
        if args[:2] == ["service", "inspect"]:
            return 0, json.dumps([{"Spec": {"Name": n, "Labels": self.services[n]}} for n in args[2:]]), ""
        if args[:2] == ["stack", "deploy"]:
            stack = json.loads(Path(args[3]).read_text())
            self.services = {f"{args[-1]}_{k}": v["deploy"]["labels"] for k, v in stack["services"].items()}
            return 0, "", ""
        if args[:2] == ["stack", "rm"]:
            self.services = {}
            return 0, "", ""
        if args[:1] in (["secret"], ["config"]):
            return self.objects(self.secrets if args[0] == "secret" else self.configs, args[1:], data)
        return 1, "", f"unexpected docker {args}"

    @staticmethod
    def objects(kept: dict, args: list[str], data):
        """docker secret|config ls/inspect/create/rm."""
        if args[0] == "ls":
            key, value = args[-1].removeprefix("label=").split("=", 1)
            return 0, "\n".join(n for n, s in kept.items() if s["labels"].get(key) == value), ""
        if args[0] == "inspect":
            return 0, json.dumps([{"Spec": {"Name": n, "Labels": kept[n]["labels"]}} for n in args[1:]]), ""
        if args[0] == "create":
            labels = dict(a.split("=", 1) for a in args[2:-2:2])
            kept[args[-2]] = {"labels": labels, "data": data}
            return 0, args[-2] + "\n", ""
        if args[0] == "rm":
            del kept[args[1]]
            return 0, "", ""
        return 1, "", f"unexpected docker {args}"

    def node(self, index: int) -> dict:
        hostname = self.hostnames[index]
        named = [{"NamedResourceSpec": {"Kind": "GPU", "Value": u}} for u in self.gpus.get(hostname, [])]
        return {"Description": {"Hostname": hostname, "Resources": {"GenericResources": named or None}}}

    def deploys(self) -> int:
        return sum(1 for c in self.calls if c[:2] == ["stack", "deploy"])


@pytest.fixture
def swarm():
    fake = FakeSwarm()
    with (
        mock.patch.object(basic.AnsibleModule, "run_command", lambda _module, argv, **kw: fake(argv, **kw)),
        mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/docker"),
    ):
        yield fake


def args(tmp_path, **extra) -> dict:
    return {
        "image": "torchswarm/trainer:latest",
        "nodes": [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)],
        "stack_dir": str(tmp_path),
        **extra,
    }


def test_deploys_once_then_changes_nothing(swarm, tmp_path):
    first, failed = run_module(training_stack.main, args(tmp_path))
    assert not failed and first["changed"]
    assert first["services"] == ["ddp_node0", "ddp_node1", "ddp_node2"]
    assert (tmp_path / "ddp.yml").stat().st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "ddp.yml").read_text()) == first["stack"]

    second, _ = run_module(training_stack.main, args(tmp_path))
    assert not second["changed"]
    assert swarm.deploys() == 1


def test_a_changed_job_is_redeployed_with_a_diff(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path))
    result, _ = run_module(training_stack.main, {**args(tmp_path, epochs=20), "_ansible_diff": True})
    assert result["changed"] and swarm.deploys() == 2
    assert '"10"' in result["diff"]["before"] and '"20"' in result["diff"]["after"]
    assert "deploy stack ddp (3 services) with its rendezvous service" in result["actions"]


def test_check_mode_deploys_nothing(swarm, tmp_path):
    result, _ = run_module(training_stack.main, {**args(tmp_path), "_ansible_check_mode": True})
    assert result["changed"]
    assert swarm.deploys() == 0
    assert not (tmp_path / "ddp.yml").exists()


def test_a_node_outside_the_swarm_fails_before_deploy(swarm, tmp_path):
    swarm.hostnames = ["node0", "node1"]
    result, failed = run_module(training_stack.main, args(tmp_path))
    assert failed
    assert "host node2: its swarm hostname 'node2' is not a node of the swarm" in result["msg"]
    assert "nothing was deployed" in result["msg"]
    assert swarm.deploys() == 0


def test_all_problems_are_reported_together(swarm, tmp_path):
    nodes = [
        {"name": "node0", "hostname": "node0", "node_rank": 0},
        {"name": "node1", "hostname": "node1", "node_rank": 0},
    ]
    result, failed = run_module(training_stack.main, args(tmp_path, nodes=nodes, image="Bad Image", epochs=0))
    assert failed
    assert len(result["errors"]) == 3, result["errors"]


def test_absent_removes_the_stack_once(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path))
    removed, _ = run_module(training_stack.main, {"state": "absent", "stack_dir": str(tmp_path)})
    again, _ = run_module(training_stack.main, {"state": "absent", "stack_dir": str(tmp_path)})
    assert removed["changed"] and not again["changed"]
    assert not (tmp_path / "ddp.yml").exists()


def test_gpu_nodes_reserve_one_gpu_per_process_defaulting_to_all_of_them(swarm, tmp_path):
    swarm.gpus = {"node0": ["GPU-a", "GPU-b"], "node1": ["GPU-c", "GPU-d"]}
    nodes = args(tmp_path)["nodes"]
    nodes[1]["nproc_per_node"] = 1
    result, failed = run_module(training_stack.main, args(tmp_path, nodes=nodes))
    assert not failed, result.get("msg")
    services = result["stack"]["services"]
    reservations = {name: s["deploy"].get("resources") for name, s in services.items()}

    def gpus(value: int) -> dict:
        return {
            "reservations": {
                "generic_resources": [{"discrete_resource_spec": {"kind": "GPU", "value": value}}]
            }
        }

    assert reservations["node0"] == gpus(2) and reservations["node1"] == gpus(1)
    assert reservations["node2"] is None  # no GPUs: a CPU service, one process
    assert [n["nproc_per_node"] for n in result["nodes"]] == [2, 1, 1]
    assert "--nproc_per_node=2" in services["node0"]["command"]


def test_more_processes_than_the_node_has_gpus_is_refused_before_deploy(swarm, tmp_path):
    swarm.gpus = {"node0": ["GPU-a", "GPU-b"], "node1": ["GPU-c", "GPU-d"], "node2": ["GPU-e", "GPU-f"]}
    nodes = args(tmp_path)["nodes"]
    nodes[2]["nproc_per_node"] = 3
    result, failed = run_module(training_stack.main, args(tmp_path, nodes=nodes))
    assert failed and swarm.deploys() == 0
    assert result["errors"] == [
        "host node2: nproc_per_node 3 needs 3 GPUs (one per process), but its swarm node advertises 2"
    ]


def test_gpus_on_the_overlay_are_refused_with_an_engine_that_rejects_them(swarm, tmp_path):
    swarm.gpus, swarm.engine = {"node0": ["GPU-a"]}, "20.10.24+dfsg1"
    result, failed = run_module(training_stack.main, args(tmp_path))
    assert failed and swarm.deploys() == 0
    assert (
        "need Docker Engine 23.0.2 or later on the managers; this manager runs 20.10.24+dfsg1"
        in result["msg"]
    )
    assert "job_network_mode: host" in result["msg"]

    hosts, _ = run_module(training_stack.main, args(tmp_path, network_mode="host", master_addr="10.0.0.1"))
    assert hosts["changed"] and swarm.deploys() == 1  # the host network is not affected


SECRET = "hunter2-$ecret-value"


def test_secrets_become_swarm_secrets_whose_values_appear_nowhere_else(swarm, tmp_path):
    result, failed = run_module(
        training_stack.main,
        {
            **args(tmp_path, secrets={"API_TOKEN": SECRET}, env={"PLAIN": "shown-nowhere"}),
            "_ansible_diff": True,
        },
    )
    assert not failed and result["changed"]
    [(name, created)] = swarm.secrets.items()
    assert created["data"] == SECRET  # byte for byte: no newline added
    assert result["secrets"] == {"API_TOKEN": name}
    assert result["stack"]["secrets"] == {"API_TOKEN": {"external": True, "name": name}}
    stack_file = (tmp_path / "ddp.yml").read_text()
    everything = json.dumps(result) + stack_file + json.dumps(swarm.calls)
    assert SECRET not in everything
    assert "shown-nowhere" not in json.dumps(result)  # job_env: hidden in result, diff and arguments
    assert "shown-nowhere" in stack_file  # but the task needs it
    assert result["invocation"]["module_args"]["env"] == {"PLAIN": "<hidden>"}

    again, _ = run_module(
        training_stack.main, args(tmp_path, secrets={"API_TOKEN": SECRET}, env={"PLAIN": "shown-nowhere"})
    )
    assert again["changed"] is False and len(swarm.secrets) == 1 and swarm.deploys() == 1


def test_a_rotated_secret_redeploys_and_the_old_swarm_secret_goes(swarm, tmp_path):
    first, _ = run_module(training_stack.main, args(tmp_path, secrets={"API_TOKEN": SECRET}))
    rotated, _ = run_module(
        training_stack.main, {**args(tmp_path, secrets={"API_TOKEN": "new-value"}), "_ansible_diff": True}
    )
    assert rotated["changed"] and swarm.deploys() == 2
    assert list(swarm.secrets) == [rotated["secrets"]["API_TOKEN"]] != [first["secrets"]["API_TOKEN"]]
    assert swarm.secrets[rotated["secrets"]["API_TOKEN"]]["data"] == "new-value"
    assert "new-value" not in json.dumps(rotated) and SECRET not in json.dumps(rotated)
    # The old secret is removed only after the stack no longer refers to it.
    order = [
        c[:2] for c in swarm.calls if c[:2] in (["stack", "deploy"], ["secret", "rm"], ["secret", "create"])
    ]
    assert order == [
        ["secret", "create"],
        ["stack", "deploy"],
        ["secret", "create"],
        ["stack", "deploy"],
        ["secret", "rm"],
    ]


def test_absent_removes_the_jobs_swarm_secrets_too(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path, secrets={"API_TOKEN": SECRET}))
    result, failed = run_module(
        training_stack.main, {"name": "ddp", "state": "absent", "stack_dir": str(tmp_path)}
    )
    assert not failed and result["changed"]
    assert swarm.secrets == {} and swarm.services == {}


def test_a_changed_env_value_shows_as_changed_in_the_diff_but_never_its_value(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path, env={"A": "old-value", "B": "same"}))
    result, _ = run_module(
        training_stack.main, {**args(tmp_path, env={"A": "new-value", "B": "same"}), "_ansible_diff": True}
    )
    assert result["changed"]
    assert '"A": "<hidden>"' in result["diff"]["before"]
    assert '"A": "<hidden> (changed)"' in result["diff"]["after"]
    assert '"B": "<hidden>"' in result["diff"]["after"]
    assert "old-value" not in json.dumps(result) and "new-value" not in json.dumps(result)


def test_bad_secret_names_and_durations_are_refused_before_any_secret_is_made(swarm, tmp_path):
    result, failed = run_module(
        training_stack.main, args(tmp_path, secrets={"bad-name": SECRET}, restart_delay="ten seconds")
    )
    assert failed
    assert result["errors"] == [
        "job_restart_delay 'ten seconds' is not a duration such as 10s, 1m30s or 500ms",
        "job_secrets: 'bad-name' is not an environment variable name",
    ]
    assert swarm.secrets == {} and swarm.deploys() == 0
    assert SECRET not in json.dumps(result)


def test_dollars_reach_the_stack_file_doubled_and_the_result_as_given(swarm, tmp_path):
    result, _ = run_module(training_stack.main, args(tmp_path, trainer_args=["--tag", "${X:?y}"]))
    assert "$${X:?y}" in (tmp_path / "ddp.yml").read_text()
    assert "${X:?y}" in result["stack"]["services"]["node0"]["command"]


def test_script_files_become_configs_in_the_working_directory_and_a_changed_file_redeploys(swarm, tmp_path):
    files = {"my_ddp.py": "print('v1')\n", "lib/__init__.py": ""}
    first, failed = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=files))
    assert not failed and first["changed"]
    assert {c["data"] for c in swarm.configs.values()} == {"print('v1')\n", "\n"}  # a config cannot be empty
    mounts = {c["target"] for c in first["stack"]["services"]["node1"]["configs"]}
    assert mounts == {"/workspace/my_ddp.py", "/workspace/lib/__init__.py"}
    # The result names each file's config, never its text.
    assert "print('v1')" not in json.dumps(first["invocation"])

    again, _ = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=files))
    assert not again["changed"] and swarm.deploys() == 1

    old = set(swarm.configs)
    changed = {**files, "my_ddp.py": "print('v2')\n"}
    third, _ = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=changed))
    assert third["changed"] and swarm.deploys() == 2
    assert len(swarm.configs) == 2 and len(old & set(swarm.configs)) == 1  # the old my_ddp.py's config went


def test_a_script_that_is_not_among_the_shipped_files_is_refused_before_any_config(swarm, tmp_path):
    result, failed = run_module(training_stack.main, args(tmp_path, script_files={"other.py": "x"}))
    assert (
        failed and "job_script 'training_code.py' is not among the files of job_script_src" in result["msg"]
    )
    assert not swarm.configs and swarm.deploys() == 0
