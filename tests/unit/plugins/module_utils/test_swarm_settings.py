"""The swarm-wide settings kept as the inventory says: durations as Docker takes them, what a
manager's docker info shows, and what must change."""

from __future__ import annotations

import pytest

from ansible_collections.torchswarm.ddp.plugins.module_utils import _swarm_settings as swarm_settings

HOUR = 3600 * 10**9


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2160h", 2160 * HOUR),
        ("2160h0m0s", 2160 * HOUR),
        ("1h30m", 90 * 60 * 10**9),
        ("1.5h", 5400 * 10**9),
        ("1h500ms", HOUR + 500 * 10**6),
    ],
)
def test_go_durations_are_read_as_docker_reads_them(text, ns):
    assert swarm_settings.duration_ns(text) == ns


@pytest.mark.parametrize("text", ["90d", "", "h", "2160", "2160h junk"])
def test_what_is_not_a_duration_is_refused(text):
    with pytest.raises(ValueError, match="is not a duration"):
        swarm_settings.duration_ns(text)


def test_problems_name_the_variable_and_the_hour_swarm_needs():
    assert swarm_settings.problems("") == [] and swarm_settings.problems("720h") == []
    assert swarm_settings.problems("90d") == [
        "swarm_cert_expiry: '90d' is not a duration such as 2160h or 720h30m"
    ]
    assert swarm_settings.problems("30m") == [
        "swarm_cert_expiry: '30m' is shorter than the hour swarm allows"
    ]


def test_settings_are_read_from_a_managers_cluster_spec_only():
    spec = {"CAConfig": {"NodeCertExpiry": 2160 * HOUR}, "EncryptionConfig": {"AutoLockManagers": False}}
    assert swarm_settings.settings_of({"Cluster": {"Spec": spec}}) == {
        "cert_expiry_ns": 2160 * HOUR,
        "autolock": False,
    }
    assert swarm_settings.settings_of({"LocalNodeState": "active"}) == {}
    assert swarm_settings.settings_of(None) == {}
    kept = {"cert_expiry_ns": 720 * HOUR, "autolock": True}  # host_state's reading
    assert swarm_settings.settings_of({"LocalNodeState": "active", "Settings": kept}) == kept


def test_only_what_differs_changes_and_an_unset_wish_leaves_the_setting_alone():
    current = {"Settings": {"cert_expiry_ns": 2160 * HOUR, "autolock": False}}
    assert swarm_settings.changes(current, "2160h0m0s", False) == {}
    assert swarm_settings.changes(current, "", None) == {}
    assert swarm_settings.changes(current, "720h", True) == {
        "node_cert_expiry": 720 * HOUR,
        "autolock_managers": True,
    }
    spec = {"CAConfig": {"NodeCertExpiry": 2160 * HOUR}, "EncryptionConfig": {"AutoLockManagers": True}}
    assert swarm_settings.changes({"Cluster": {"Spec": spec}}, None, False) == {"autolock_managers": False}
    # A swarm just initialised, its state read before: everything asked for is set.
    assert swarm_settings.changes({"LocalNodeState": "inactive"}, "720h", None) == {
        "node_cert_expiry": 720 * HOUR
    }
