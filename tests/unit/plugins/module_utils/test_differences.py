"""The difference tracker: each difference once, and a diff that shows only those."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils._differences import DifferenceTracker


def test_nothing_differs_nothing_recorded():
    tracker = DifferenceTracker()
    tracker.compare({"a": {"b": [1, 2]}, "c": 1}, {"c": 1, "a": {"b": [1, 2]}})
    assert not tracker and tracker.before_after() == ({}, {})


def test_each_changed_leaf_is_recorded_by_its_path_and_lists_are_one_value():
    tracker = DifferenceTracker()
    before = {"services": {"n0": {"command": ["a", "1"], "env": {"X": "1", "Y": "2"}}, "n1": {"k": 1}}}
    after = {"services": {"n0": {"command": ["a", "2"], "env": {"X": "1", "Y": "3"}}, "n1": {"k": 1}}}
    tracker.compare(before, after)
    assert tracker.items == [
        (("services", "n0", "command"), ["a", "1"], ["a", "2"]),
        (("services", "n0", "env", "Y"), "2", "3"),
    ]
    assert tracker.before_after() == (
        {"services": {"n0": {"command": ["a", "1"], "env": {"Y": "2"}}}},
        {"services": {"n0": {"command": ["a", "2"], "env": {"Y": "3"}}}},
    )


def test_a_key_one_side_lacks_is_left_out_of_that_side():
    tracker = DifferenceTracker()
    tracker.compare(
        {"services": {"n0": {"k": 1}}}, {"services": {"n0": {"k": 1}, "n1": {"k": 2}}}, ("stack",)
    )
    assert tracker.before_after() == ({}, {"stack": {"services": {"n1": {"k": 2}}}})
    removed = DifferenceTracker()
    removed.compare({"a": 1, "b": None}, {})
    assert removed.before_after() == ({"a": 1, "b": None}, {})


def test_keys_with_dots_stay_whole():
    tracker = DifferenceTracker()
    tracker.compare(
        {"labels": {"io.torchswarm.node-rank": "1"}}, {"labels": {"io.torchswarm.node-rank": "2"}}
    )
    assert tracker.before_after()[1] == {"labels": {"io.torchswarm.node-rank": "2"}}


def test_a_value_that_turns_into_a_dict_is_one_difference():
    tracker = DifferenceTracker()
    tracker.compare({"a": "text"}, {"a": {"b": 1}})
    assert tracker.items == [(("a",), "text", {"b": 1})]
