"""Which swarm secrets hold job_secrets: reuse on an equal value, a new one on a new value."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_secrets import digest, plan_secrets


def existing(name, job, secret, salt, value):
    labels = {
        "io.torchswarm.job": job,
        "io.torchswarm.secret": secret,
        "io.torchswarm.salt": salt,
        "io.torchswarm.digest": digest(salt, value),
    }
    return {"Spec": {"Name": name, "Labels": labels}}


def salts(*values):
    it = iter(values)
    return lambda: next(it)


def test_a_first_deploy_creates_one_secret_per_name():
    plan = plan_secrets("ddp", {"B": "2", "A": "1"}, [], salts("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"))
    assert plan.refs == {"A": "ddp_A_aaaaaaaaaaaa", "B": "ddp_B_bbbbbbbbbbbb"}
    assert [(n, s) for n, s, _unused in plan.create] == [
        ("ddp_A_aaaaaaaaaaaa", "A"),
        ("ddp_B_bbbbbbbbbbbb", "B"),
    ]
    labels = plan.create[0][2]
    assert labels["io.torchswarm.digest"] == digest("aaaaaaaaaaaaaaaa", "1")
    assert "1" not in labels.values()  # a digest, never the value
    assert plan.obsolete == []


def test_an_unchanged_value_reuses_its_secret_and_a_changed_one_replaces_it():
    swarm = [
        existing("ddp_A_old", "ddp", "A", "s1", "1"),
        existing("ddp_B_old", "ddp", "B", "s2", "2"),
        existing("ddp_C_old", "ddp", "C", "s3", "3"),  # no longer wanted
        existing("other_A_x", "other", "A", "s4", "9"),  # another job's: never touched
    ]
    plan = plan_secrets("ddp", {"A": "1", "B": "two"}, swarm, salts("ffffffffffffffff"))
    assert plan.refs == {"A": "ddp_A_old", "B": "ddp_B_ffffffffffff"}
    assert [n for n, _unused, _unused in plan.create] == ["ddp_B_ffffffffffff"]
    assert plan.obsolete == ["ddp_B_old", "ddp_C_old"]


def test_the_same_value_with_another_salt_has_another_digest():
    assert digest("s1", "v") != digest("s2", "v")
    assert digest("s1", "v") == digest("s1", "v")
