from __future__ import annotations

import json

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils._daemon_config import (
    DaemonConfigError,
    merge_daemon_config,
    parse_daemon_config,
    render_daemon_config,
)


@pytest.mark.parametrize(
    ("current", "wanted", "merged"),
    [
        ({}, {"log-driver": "json-file"}, {"log-driver": "json-file"}),
        ({"debug": True}, {"log-driver": "json-file"}, {"debug": True, "log-driver": "json-file"}),
        ({"log-driver": "syslog"}, {"log-driver": "json-file"}, {"log-driver": "json-file"}),
        (
            {"runtimes": {"crun": {"path": "/usr/bin/crun"}}},
            {"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}},
            {"runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": {"path": "nvidia-container-runtime"}}},
        ),
        (
            {"log-opts": {"max-size": "10m", "labels": "a"}},
            {"log-opts": {"max-size": "50m"}},
            {"log-opts": {"max-size": "50m", "labels": "a"}},
        ),
        # Lists are values, not sets to merge into: the wanted list wins.
        (
            {"node-generic-resources": ["GPU=GPU-old"]},
            {"node-generic-resources": ["GPU=GPU-a", "GPU=GPU-b"]},
            {"node-generic-resources": ["GPU=GPU-a", "GPU=GPU-b"]},
        ),
        # A map may replace a plain value and the other way round.
        ({"log-opts": "bogus"}, {"log-opts": {"max-size": "1m"}}, {"log-opts": {"max-size": "1m"}}),
    ],
)
def test_merge_sets_wanted_keys_and_keeps_the_rest(current, wanted, merged):
    assert merge_daemon_config(current, wanted) == merged


def test_merge_does_not_modify_its_inputs():
    current = {"runtimes": {"crun": {"path": "crun"}}}
    wanted = {"runtimes": {"nvidia": {"path": "nvidia"}}}
    merge_daemon_config(current, wanted)
    assert current == {"runtimes": {"crun": {"path": "crun"}}}
    assert wanted == {"runtimes": {"nvidia": {"path": "nvidia"}}}


def test_merging_what_is_already_there_is_no_change():
    current = {"debug": True, "log-opts": {"max-size": "50m"}}
    assert merge_daemon_config(current, {"log-opts": {"max-size": "50m"}}) == current


@pytest.mark.parametrize("text", ["", "  \n"])
def test_an_empty_file_is_an_empty_config(text):
    assert parse_daemon_config(text, "/etc/docker/daemon.json") == {}


@pytest.mark.parametrize(("text", "why"), [("{debug: true}", "not valid JSON"), ("[1]", "holds a JSON list")])
def test_a_broken_file_is_reported_with_its_path(text, why):
    with pytest.raises(DaemonConfigError, match=why) as info:
        parse_daemon_config(text, "/etc/docker/daemon.json")
    assert "/etc/docker/daemon.json" in str(info.value)


def test_rendering_is_stable_and_parses_back():
    config = {"b": 1, "a": {"d": 2, "c": 3}}
    text = render_daemon_config(config)
    assert text == render_daemon_config(json.loads(text))
    assert json.loads(text) == config
    assert text.index('"a"') < text.index('"b"')
