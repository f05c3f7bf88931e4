"""The training_stack module, with the docker CLI faked at its boundary (run_command).

The fake does to a stack file what Docker does, so it cannot hand the module its own words
back: services get IDs apart from their names and the stack's own labels beside the file's,
``service ls`` honours its label filter, ``$$`` in the file is one ``$`` and a lone ``$VAR`` is
filled in from the (empty) environment, and ``--prune`` removes the stack's other services.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.torchswarm.ddp.plugins.modules import training_stack
from module_runner import run_module

HASH_LABEL = "io.torchswarm.stack-hash"
NAMESPACE = "com.docker.stack.namespace"
# Compose-file interpolation: $$ is a dollar, $VAR and ${VAR...} are variables (unset here).
INTERPOLATION = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")


class FakeSwarm:
    """Just enough of `docker` on a manager: nodes, stacks' services, secrets and configs."""

    def __init__(self, hostnames=("node0", "node1", "node2")) -> None:
        self.hostnames = list(hostnames)
        self.gpus: dict[str, list[str]] = {}  # hostname -> the GPU UUIDs it advertises
        self.engine = "26.1.5"
        self.services: dict[str, dict] = {}  # ID -> Spec, as `docker service inspect` shows it
        self.secrets: dict[str, dict] = {}  # ID -> {"name", "labels", "data"}
        self.configs: dict[str, dict] = {}  # the same, for swarm configs
        self.calls: list[list[str]] = []
        self.ids = (f"{n:025x}" for n in itertools.count(1))

    def __call__(self, args, data=None, **kwargs):
        args = args[1:]
        self.calls.append(args)
        if args[:2] == ["node", "ls"]:
            return 0, "\n".join(f"id{i} {h}" for i, h in enumerate(self.hostnames)), ""
        if args[:1] == ["version"]:
            return 0, self.engine + "\n", ""
        if args[:2] == ["node", "inspect"]:
            return 0, json.dumps([self.node(int(i.removeprefix("id"))) for i in args[2:]]), ""
        if args[:2] == ["service", "ls"]:
            return 0, "\n".join(self.stack_service_ids(args[-1].removeprefix(f"label={NAMESPACE}="))), ""
        if args[:2] == ["service", "inspect"]:
            return 0, json.dumps([{"ID": i, "Spec": self.services[i]} for i in args[2:]]), ""
        if args[:2] == ["stack", "deploy"]:
            return self.deploy(Path(args[args.index("--compose-file") + 1]).read_text(), args[-1])
        if args[:2] == ["stack", "rm"]:
            for service_id in self.stack_service_ids(args[2]):
                del self.services[service_id]
            return 0, "", ""
        if args[:1] in (["secret"], ["config"]):
            return self.objects(self.secrets if args[0] == "secret" else self.configs, args[1:], data)
        return 1, "", f"unexpected docker {args}"

    def stack_service_ids(self, stack: str) -> list[str]:
        return [i for i, spec in self.services.items() if spec["Labels"].get(NAMESPACE) == stack]

    def deploy(self, text: str, stack: str):
        compose = json.loads(INTERPOLATION.sub(lambda m: "$" if m.group(1) == "$" else "", text))
        by_name = {self.services[i]["Name"]: i for i in self.stack_service_ids(stack)}
        for key, service in compose["services"].items():
            name = f"{stack}_{key}"
            env = service.get("environment", {})
            self.services[by_name.pop(name, None) or next(self.ids)] = {
                "Name": name,
                "Labels": {
                    **service["deploy"].get("labels", {}),
                    NAMESPACE: stack,
                    "com.docker.stack.image": service["image"],
                },
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": service["image"],
                        "Args": service.get("command", []),
                        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
                        "Labels": {**service.get("labels", {}), NAMESPACE: stack},
                    }
                },
            }
        for gone in by_name.values():  # --prune
            del self.services[gone]
        return 0, "", ""

    def objects(self, kept: dict, args: list[str], data):
        """docker secret|config ls/inspect/create/rm."""
        if args[0] == "ls":
            key, value = args[-1].removeprefix("label=").split("=", 1)
            return 0, "\n".join(i for i, s in kept.items() if s["labels"].get(key) == value), ""
        if args[0] == "inspect":
            found = [
                {"ID": i, "Spec": {"Name": kept[i]["name"], "Labels": kept[i]["labels"]}} for i in args[1:]
            ]
            return 0, json.dumps(found), ""
        if args[0] == "create":
            labels = dict(a.split("=", 1) for a in args[2:-2:2])
            new_id = next(self.ids)
            kept[new_id] = {"name": args[-2], "labels": labels, "data": data}
            return 0, new_id + "\n", ""
        if args[0] == "rm":
            [found] = [i for i, s in kept.items() if args[1] in (i, s["name"])]
            del kept[found]
            return 0, "", ""
        return 1, "", f"unexpected docker {args}"

    def node(self, index: int) -> dict:
        hostname = self.hostnames[index]
        named = [{"NamedResourceSpec": {"Kind": "GPU", "Value": u}} for u in self.gpus.get(hostname, [])]
        return {"Description": {"Hostname": hostname, "Resources": {"GenericResources": named or None}}}

    def deploys(self) -> int:
        return sum(1 for c in self.calls if c[:2] == ["stack", "deploy"])

    def spec(self, name: str) -> dict:
        [found] = [s for s in self.services.values() if s["Name"] == name]
        return found

    def names(self, kept: dict) -> list[str]:
        return [s["name"] for s in kept.values()]


@pytest.fixture
def swarm():
    fake = FakeSwarm()
    with (
        mock.patch.object(basic.AnsibleModule, "run_command", lambda _module, argv, **kw: fake(argv, **kw)),
        mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/docker"),
    ):
        yield fake


def args(tmp_path, nodes=None, diff=False, check=False, **job) -> dict:
    """The module's arguments; keywords are job options, but secrets and script_files."""
    top = {k: job.pop(k) for k in ("secrets", "script_files", "name") if k in job}
    return {
        "job": {"image": "torchswarm/trainer:latest", **job},
        "nodes": nodes or [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)],
        "stack_dir": str(tmp_path),
        "_ansible_diff": diff,
        "_ansible_check_mode": check,
        **top,
    }


def test_deploys_once_then_changes_nothing_against_what_docker_reports(swarm, tmp_path):
    first, failed = run_module(training_stack.main, args(tmp_path))
    assert not failed and first["changed"]
    assert first["services"] == ["ddp_node0", "ddp_node1", "ddp_node2"]
    assert (tmp_path / "ddp.yml").stat().st_mode & 0o777 == 0o600
    assert json.loads((tmp_path / "ddp.yml").read_text()) == first["stack"]
    assert swarm.spec("ddp_node1")["Labels"][HASH_LABEL] == first["stack_hash"]

    second, _unused = run_module(training_stack.main, args(tmp_path))
    assert not second["changed"] and second["actions"] == []
    assert swarm.deploys() == 1


def test_another_stack_on_the_swarm_is_neither_counted_nor_touched(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path, name="other", epochs=3))
    first, _unused = run_module(training_stack.main, args(tmp_path))
    again, _unused = run_module(training_stack.main, args(tmp_path))
    assert first["changed"] and not again["changed"] and swarm.deploys() == 2
    assert len(swarm.stack_service_ids("other")) == len(swarm.stack_service_ids("ddp")) == 4


def test_a_service_changed_or_removed_behind_its_back_is_deployed_again(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path))
    swarm.spec("ddp_node1")["Labels"][HASH_LABEL] = "0" * 16  # `docker service update --label-add`
    result, _unused = run_module(training_stack.main, args(tmp_path, diff=True))
    assert result["changed"] and swarm.deploys() == 2
    assert json.loads(result["diff"]["before"]) == {"stack_hash": {"node1": "0" * 16}}
    assert json.loads(result["diff"]["after"]) == {"stack_hash": {"node1": result["stack_hash"]}}

    [node2] = [i for i, s in swarm.services.items() if s["Name"] == "ddp_node2"]
    del swarm.services[node2]  # `docker service rm ddp_node2`
    again, _unused = run_module(training_stack.main, args(tmp_path))
    assert again["changed"] and swarm.deploys() == 3 and swarm.spec("ddp_node2")


def test_a_changed_job_is_redeployed_and_the_diff_shows_only_what_differs(swarm, tmp_path):
    first, _unused = run_module(training_stack.main, args(tmp_path))
    result, _unused = run_module(training_stack.main, args(tmp_path, diff=True, epochs=20))
    assert result["changed"] and swarm.deploys() == 2
    assert "deploy stack ddp (3 services) with its rendezvous service" in result["actions"]
    before, after = json.loads(result["diff"]["before"]), json.loads(result["diff"]["after"])
    assert before["stack_hash"] == dict.fromkeys(
        ["node0", "node1", "node2", "rendezvous"], first["stack_hash"]
    )
    assert after["stack_hash"] == dict.fromkeys(
        ["node0", "node1", "node2", "rendezvous"], result["stack_hash"]
    )
    assert sorted(before["services"]) == ["node0", "node1", "node2"]  # the rendezvous service is as it was
    assert before["services"]["node0"] == {"command": first["stack"]["services"]["node0"]["command"]}
    assert after["services"]["node0"] == {"command": result["stack"]["services"]["node0"]["command"]}
    assert "10" in before["services"]["node0"]["command"] and "20" in after["services"]["node0"]["command"]
    assert result["diff"]["before_header"] == str(tmp_path / "ddp.yml")
    assert swarm.spec("ddp_node0")["TaskTemplate"]["ContainerSpec"]["Args"][7:8] == ["20"]


def test_check_mode_deploys_nothing_and_says_what_it_would(swarm, tmp_path):
    result, _unused = run_module(training_stack.main, args(tmp_path, check=True, diff=True))
    assert result["changed"] and result["actions"] == [
        "deploy stack ddp (3 services) with its rendezvous service"
    ]
    assert swarm.deploys() == 0 and swarm.services == {}
    assert not (tmp_path / "ddp.yml").exists()
    assert json.loads(result["diff"]["after"])["services"]["node0"]["image"] == "torchswarm/trainer:latest"
    assert result["diff"]["before"] == ""


def test_a_node_outside_the_swarm_fails_before_deploy(swarm, tmp_path):
    swarm.hostnames = ["node0", "node1"]
    result, failed = run_module(training_stack.main, args(tmp_path))
    assert failed and swarm.deploys() == 0
    assert result["errors"] == [
        "host node2: its swarm hostname 'node2' is not a node of the swarm (the swarm has node0, node1); "
        "run the cluster playbook for it first"
    ]
    assert result["msg"].startswith("The training stack has problems; nothing was deployed:\n- host node2:")


def test_all_problems_are_reported_together(swarm, tmp_path):
    nodes = [
        {"name": "node0", "hostname": "node0", "node_rank": 0},
        {"name": "node1", "hostname": "node1", "node_rank": 0},
    ]
    result, failed = run_module(training_stack.main, args(tmp_path, nodes, image="Bad Image", epochs=0))
    assert failed
    assert result["errors"] == [
        "host node1: node_rank 0 is also the node_rank of node0",
        "job_image 'Bad Image' is not a valid image name: it is not [registry/]name[:tag][@sha256:digest] "
        "in lowercase",
        "job_epochs is 0; it must be at least 1",
    ]


def test_a_job_option_of_the_wrong_type_or_name_is_refused_by_the_argument_spec(swarm, tmp_path):
    result, failed = run_module(training_stack.main, args(tmp_path, epochs="ten"))
    assert failed and "epochs" in result["msg"] and "int" in result["msg"]
    result, failed = run_module(training_stack.main, args(tmp_path, epoch=3))
    assert failed and "epoch" in result["msg"] and swarm.deploys() == 0


def test_absent_removes_the_stack_once(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path))
    removed, _unused = run_module(
        training_stack.main, {"state": "absent", "stack_dir": str(tmp_path), "_ansible_diff": True}
    )
    again, _unused = run_module(training_stack.main, {"state": "absent", "stack_dir": str(tmp_path)})
    assert removed["changed"] and not again["changed"]
    assert removed["actions"] == ["remove stack ddp; snapshot volumes stay"]
    assert json.loads(removed["diff"]["before"])["services"]["node0"]["image"] == "torchswarm/trainer:latest"
    assert removed["diff"]["after"] == ""
    assert not (tmp_path / "ddp.yml").exists() and swarm.services == {}


def test_gpu_nodes_reserve_one_gpu_per_process_defaulting_to_all_of_them(swarm, tmp_path):
    swarm.gpus = {"node0": ["GPU-a", "GPU-b"], "node1": ["GPU-c", "GPU-d"]}
    nodes = [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)]
    nodes[1]["nproc_per_node"] = 1
    result, failed = run_module(training_stack.main, args(tmp_path, nodes))
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
    nodes = [{"name": f"node{i}", "hostname": f"node{i}"} for i in range(3)]
    nodes[2]["nproc_per_node"] = 3
    result, failed = run_module(training_stack.main, args(tmp_path, nodes))
    assert failed and swarm.deploys() == 0
    assert result["errors"] == [
        "host node2: nproc_per_node 3 needs 3 GPUs (one per process), but its swarm node advertises 2"
    ]


def test_gpus_on_the_overlay_are_refused_with_an_engine_that_rejects_them(swarm, tmp_path):
    swarm.gpus, swarm.engine = {"node0": ["GPU-a"]}, "20.10.24+dfsg1"
    result, failed = run_module(training_stack.main, args(tmp_path))
    assert failed and swarm.deploys() == 0
    assert result["errors"] == [
        "GPU reservations on the overlay network need Docker Engine 23.0.2 or later on the managers; "
        "this manager runs 20.10.24+dfsg1, which rejects such tasks over and over (moby/moby#44378). "
        "Upgrade Docker (docker_package_source: docker), or set job_network_mode: host"
    ]

    hosts, _unused = run_module(
        training_stack.main, args(tmp_path, network_mode="host", master_addr="10.0.0.1")
    )
    assert hosts["changed"] and swarm.deploys() == 1  # the host network is not affected


def test_the_registry_login_is_passed_on_only_when_asked(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path))
    run_module(training_stack.main, args(tmp_path, with_registry_auth=True, epochs=3))
    deploys = [c for c in swarm.calls if c[:2] == ["stack", "deploy"]]
    assert ["--with-registry-auth" in c for c in deploys] == [False, True]


SECRET = "hunter2-$ecret-value"


def test_secrets_become_swarm_secrets_whose_values_appear_nowhere_else(swarm, tmp_path):
    result, failed = run_module(
        training_stack.main,
        args(tmp_path, diff=True, secrets={"API_TOKEN": SECRET}, env={"PLAIN": "shown-nowhere"}),
    )
    assert not failed and result["changed"]
    [created] = swarm.secrets.values()
    assert created["data"] == SECRET  # byte for byte: no newline added
    assert result["secrets"] == {"API_TOKEN": created["name"]}
    assert result["stack"]["secrets"] == {"API_TOKEN": {"external": True, "name": created["name"]}}
    stack_file = (tmp_path / "ddp.yml").read_text()
    everything = json.dumps(result) + stack_file + json.dumps(swarm.calls) + json.dumps(swarm.services)
    assert SECRET not in everything
    assert "shown-nowhere" not in json.dumps(result)  # job env: hidden in result, diff and arguments
    assert "PLAIN=shown-nowhere" in swarm.spec("ddp_node0")["TaskTemplate"]["ContainerSpec"]["Env"]
    assert result["invocation"]["module_args"]["job"]["env"] == {"PLAIN": "<hidden>"}
    assert result["invocation"]["module_args"]["secrets"] == {"API_TOKEN": "<hidden>"}

    again, _unused = run_module(
        training_stack.main, args(tmp_path, secrets={"API_TOKEN": SECRET}, env={"PLAIN": "shown-nowhere"})
    )
    assert again["changed"] is False and len(swarm.secrets) == 1 and swarm.deploys() == 1


def test_a_rotated_secret_redeploys_and_the_old_swarm_secret_goes(swarm, tmp_path):
    first, _unused = run_module(training_stack.main, args(tmp_path, secrets={"API_TOKEN": SECRET}))
    rotated, _unused = run_module(
        training_stack.main, args(tmp_path, diff=True, secrets={"API_TOKEN": "new-value"})
    )
    assert rotated["changed"] and swarm.deploys() == 2
    assert swarm.names(swarm.secrets) == [rotated["secrets"]["API_TOKEN"]] != [first["secrets"]["API_TOKEN"]]
    [kept] = swarm.secrets.values()
    assert kept["data"] == "new-value"
    assert "new-value" not in json.dumps(rotated) and SECRET not in json.dumps(rotated)
    assert json.loads(rotated["diff"]["after"])["secrets"] == {
        "API_TOKEN": {"name": rotated["secrets"]["API_TOKEN"]}
    }
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
    run_module(training_stack.main, args(tmp_path, name="other", secrets={"API_TOKEN": SECRET}))
    result, failed = run_module(training_stack.main, {"state": "absent", "stack_dir": str(tmp_path)})
    assert not failed and result["changed"]
    assert [s["labels"]["io.torchswarm.job"] for s in swarm.secrets.values()] == ["other"]
    assert swarm.stack_service_ids("ddp") == [] and len(swarm.stack_service_ids("other")) == 4


def test_a_changed_env_value_shows_as_changed_in_the_diff_but_never_its_value(swarm, tmp_path):
    run_module(training_stack.main, args(tmp_path, env={"A": "old-value", "B": "same"}))
    result, _unused = run_module(
        training_stack.main, args(tmp_path, diff=True, env={"A": "new-value", "B": "same"})
    )
    assert result["changed"]
    before, after = json.loads(result["diff"]["before"]), json.loads(result["diff"]["after"])
    assert before["services"]["node0"]["environment"] == {"A": "<hidden>"}
    assert after["services"]["node0"]["environment"] == {"A": "<hidden> (changed)"}  # B is as it was
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


DOLLARS = "pa$$w0rd$HOME ${X} ${X:?y} $ \U0001f680"


def test_dollars_reach_every_task_byte_for_byte(swarm, tmp_path):
    result, failed = run_module(
        training_stack.main, args(tmp_path, trainer_args=["--tag", DOLLARS], env={"D": DOLLARS})
    )
    assert not failed
    container = swarm.spec("ddp_node1")["TaskTemplate"]["ContainerSpec"]
    assert container["Args"][-2:] == ["--tag", DOLLARS] and f"D={DOLLARS}" in container["Env"]
    assert DOLLARS in result["stack"]["services"]["node0"]["command"]


def test_script_files_become_configs_in_the_working_directory_and_a_changed_file_redeploys(swarm, tmp_path):
    files = {"my_ddp.py": "print('v1')\n", "lib/__init__.py": ""}
    first, failed = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=files))
    assert not failed and first["changed"]
    assert sorted(c["data"] for c in swarm.configs.values()) == ["\n", "print('v1')\n"]  # none can be empty
    mounts = {c["target"] for c in first["stack"]["services"]["node1"]["configs"]}
    assert mounts == {"/workspace/my_ddp.py", "/workspace/lib/__init__.py"}
    # The result names each file's config, never its text.
    assert "print('v1')" not in json.dumps(first["invocation"])

    again, _unused = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=files))
    assert not again["changed"] and swarm.deploys() == 1

    old = set(swarm.names(swarm.configs))
    changed = {**files, "my_ddp.py": "print('v2')\n"}
    third, _unused = run_module(training_stack.main, args(tmp_path, script="my_ddp.py", script_files=changed))
    assert third["changed"] and swarm.deploys() == 2
    now = set(swarm.names(swarm.configs))
    assert len(now) == 2 and len(old & now) == 1  # the old my_ddp.py's config went


def test_a_script_that_is_not_among_the_shipped_files_is_refused_before_any_config(swarm, tmp_path):
    result, failed = run_module(training_stack.main, args(tmp_path, script_files={"other.py": "x"}))
    assert failed
    assert result["errors"] == [
        "job_script 'training_code.py' is not among the files of job_script_src (other.py); "
        "set job_script to the one to run"
    ]
    assert not swarm.configs and swarm.deploys() == 0


def test_each_nodes_snapshot_directory_on_its_host_is_returned(swarm, tmp_path):
    """The job role reads a finished node's completion record and metrics there."""
    result, failed = run_module(training_stack.main, args(tmp_path, snapshot_dir="/mnt/ckpt", name="exp"))
    assert not failed, result.get("msg")
    assert result["snapshot_dirs"] == {f"node{i}": f"/mnt/ckpt/exp/node{i}" for i in range(3)}
    # The output directory every rank was given, as its host sees it below that directory.
    env = result["stack"]["services"]["node1"]["environment"]
    assert env["TORCHSWARM_OUTPUT_DIR"] == f"/snapshots/exp/node1/{result['output_subdir']}"
    assert result["output_subdir"] == f"output/{result['stack_hash']}"
    volume, _unused = run_module(training_stack.main, args(tmp_path))
    assert volume["snapshot_dirs"] == {f"node{i}": "" for i in range(3)}


def test_a_deploy_without_the_job_option_is_refused_before_docker_is_asked(swarm):
    result, failed = run_module(training_stack.main, {"nodes": [{"name": "node0", "hostname": "node0"}]})
    assert failed and result["msg"] == "state is present but all of the following are missing: job"
    assert swarm.calls == []
