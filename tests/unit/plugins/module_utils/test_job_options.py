"""The job's options: declared once, in module_utils/_job_options.py, and only there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from ansible_collections.torchswarm.ddp.plugins.doc_fragments.job import ModuleDocFragment
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import (
    JOB_OPTIONS,
    Job,
    argument_spec,
    from_variables,
    validated,
)
from ansible_collections.torchswarm.ddp.plugins.modules import training_stack

ROOT = Path(__file__).resolve().parents[4]
# The three job options whose role default follows another role's variable.
LINKED = {"job_image", "job_network", "job_subnet"}


def test_the_module_takes_the_declared_options_as_its_job():
    assert training_stack.ARGUMENT_SPEC["job"]["options"] == argument_spec()
    assert "description" not in argument_spec()["epochs"]
    assert argument_spec("job_")["job_epochs"] == {"type": "int", "default": 10}


def test_the_written_doc_fragment_is_what_the_declaration_makes_now():
    spec = importlib.util.spec_from_file_location(
        "job_doc_fragment", ROOT / "tests/harness/job_doc_fragment.py"
    )
    writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(writer)
    written = (ROOT / "plugins/doc_fragments/job.py").read_text()
    assert written == writer.text(), "a job option changed: run make doc-fragment"


def test_the_module_documents_them_from_the_same_declaration():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["job"]["suboptions"]
    assert documented["epochs"] == JOB_OPTIONS["epochs"]
    assert documented["mounts"]["suboptions"] == JOB_OPTIONS["mounts"]["options"]
    assert {k: v for k, v in documented["mounts"].items() if k != "suboptions"} == {
        k: v for k, v in JOB_OPTIONS["mounts"].items() if k != "options"
    }
    assert documented.keys() == JOB_OPTIONS.keys()
    assert all(option.get("description") for option in documented.values())
    assert all(option.get("description") for option in documented["mounts"]["suboptions"].values())


def test_the_job_role_declares_none_of_them_again():
    role_vars = {f"job_{name}" for name in JOB_OPTIONS}
    defaults = yaml.safe_load((ROOT / "roles/job/defaults/main.yml").read_text())
    assert set(defaults) & role_vars == LINKED
    specs = yaml.safe_load((ROOT / "roles/job/meta/argument_specs.yml").read_text())["argument_specs"]
    for entry, spec in specs.items():
        assert not set(spec["options"]) & role_vars, entry


def test_a_job_has_the_declared_defaults():
    job = Job(image="trainer")
    for name, option in JOB_OPTIONS.items():
        if name != "image":
            assert getattr(job, name) == option.get("default"), name
    assert job.name == "ddp" and job.volume == "ddp-snapshots" and job.elastic
    assert Job(image="t", snapshot_volume="v").volume == "v"
    assert Job(image="t", trainer_args=["a"]).trainer_args == ["a"]
    assert Job(image="t").trainer_args == [] and Job(image="t").trainer_args is not job.trainer_args
    with pytest.raises(TypeError):
        Job(epochs=3)  # no image


@pytest.mark.parametrize(
    ("hosts", "min_nodes", "needed"), [(1, None, 1), (2, None, 2), (3, None, 2), (5, 5, 5)]
)
def test_hosts_needed_to_go_on(hosts, min_nodes, needed):
    assert Job(image="t", min_nodes=min_nodes).needed_nodes(hosts) == needed


def test_the_role_variables_that_are_set_are_the_options():
    variables = {
        "job_epochs": 3,
        "job_min_nodes": None,
        "job_wait": True,
        "job_secrets": {"A": "x"},
        "epochs": 9,
    }
    assert from_variables(variables) == {"epochs": 3}


def test_options_are_typed_and_filled_and_errors_name_the_role_variable():
    options, errors = validated({"epochs": "12", "env": {"A": "1"}})
    assert errors == []
    assert options["epochs"] == 12 and options["batch_size"] == 32 and options["image"] is None

    _unused, errors = validated({"epochs": "ten", "network_mode": "bridge", "trainer_args": "--model gpt"})
    assert errors == [
        "argument 'job_epochs' is of type str and we were unable to convert to int: "
        "\"'ten'\" cannot be converted to an int",
        "value of job_network_mode must be one of: overlay, host, got: bridge",
        # Ansible would make it one argument, ["--model gpt"], which the script refuses after the deploy.
        "job_trainer_args is a string ('--model gpt'); give a list, one item per argument: [--model, gpt]",
    ]
