"""job_script_src as swarm configs: names by content, the plan, the checks, the rendered stack."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._script_configs import (
    check_script_files,
    config_data,
    config_name,
    plan_configs,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import Job, Node, render_stack

FILES = {"my_ddp.py": "print('hi')\n", "lib/util.py": "X = 1\n"}


def existing(*names, job="ddp"):
    return [{"Spec": {"Name": n, "Labels": {"io.torchswarm.job": job}}} for n in names]


def test_a_changed_file_gets_a_new_name_and_the_old_config_goes():
    before = plan_configs("ddp", FILES, [])
    assert sorted(n for n, _unused in before.create) == sorted(before.refs.values()) and not before.obsolete
    changed = {**FILES, "my_ddp.py": "print('hello')\n"}
    after = plan_configs("ddp", changed, existing(*before.refs.values()))
    assert after.refs["lib/util.py"] == before.refs["lib/util.py"]
    assert after.create == [(after.refs["my_ddp.py"], "my_ddp.py")]
    assert after.obsolete == [before.refs["my_ddp.py"]]


def test_nothing_to_do_when_every_file_is_there_and_other_jobs_configs_are_left_alone():
    names = plan_configs("ddp", FILES, []).refs.values()
    plan = plan_configs("ddp", FILES, existing(*names) + existing("other_script_0", job="other"))
    assert not plan.create and not plan.obsolete


def test_names_hold_path_and_text():
    assert (
        config_name("ddp", "a.py", "x") != config_name("ddp", "b.py", "x") != config_name("ddp", "a.py", "y")
    )
    assert config_name("ddp", "a.py", "x").startswith("ddp_script_")


def test_checks_name_the_variables():
    assert check_script_files(FILES, "my_ddp.py") == []
    assert check_script_files({}, "training_code.py") == []
    errors = check_script_files({"/etc/x.py": "", "../up.py": "", "a/./b.py": ""}, "my_ddp.py")
    assert errors == [
        "job_script_src: '../up.py' is not a plain relative path below the working directory",
        "job_script_src: '/etc/x.py' is not a plain relative path below the working directory",
        "job_script_src: 'a/./b.py' is not a plain relative path below the working directory",
        "job_script 'my_ddp.py' is not among the files of job_script_src (../up.py, /etc/x.py, a/./b.py); "
        "set job_script to the one to run",
    ]


def test_every_rank_gets_the_files_in_the_working_directory_and_a_change_is_a_new_stack():
    job, nodes = Job(image="t:1", script="my_ddp.py"), [Node("node0", "node0", 0), Node("node1", "node1", 1)]
    refs = plan_configs("ddp", FILES, []).refs
    stack = render_stack(job, nodes, configs=refs)
    assert stack["configs"] == {n: {"external": True, "name": n} for n in refs.values()}
    for name in ("node0", "node1"):
        targets = {c["target"]: c["source"] for c in stack["services"][name]["configs"]}
        assert targets == {
            "/workspace/lib/util.py": refs["lib/util.py"],
            "/workspace/my_ddp.py": refs["my_ddp.py"],
        }
    assert "configs" not in stack["services"]["rendezvous"]
    other = render_stack(job, nodes, configs=plan_configs("ddp", {**FILES, "my_ddp.py": "2"}, []).refs)
    hash_label = "io.torchswarm.stack-hash"
    assert (
        other["services"]["node0"]["labels"][hash_label] != stack["services"]["node0"]["labels"][hash_label]
    )


def test_an_empty_file_is_shipped_as_one_newline_for_a_config_cannot_be_empty():
    assert config_data("") == "\n" and config_data("x = 1\n") == "x = 1\n"
