"""The stall watchdog's judgement, over a real steps file and snapshot directory, at chosen times."""

from __future__ import annotations

import os

from torchswarm import record
from torchswarm.watchdog import Watchdog


def _env(tmp_path):
    return {"TORCHSWARM_GENERATION": "0123abcd", "TORCHSWARM_SNAPSHOT_DIR": str(tmp_path / "snapshots")}


def watchdog(tmp_path, timeout="10", **more):
    stepped = tmp_path / "stepped"
    stepped.write_text("")
    env = {
        "TORCHSWARM_STALL_TIMEOUT": timeout,
        "TORCHSWARM_STEPPED_FILE": str(stepped),
        **_env(tmp_path),
        **more,
    }
    return Watchdog(env), stepped


def step_at(stepped, when: float) -> None:
    stepped.write_text("0\n")
    os.utime(stepped, (when, when))


def test_a_host_that_never_stepped_is_never_judged(tmp_path):
    dog, _unused = watchdog(tmp_path)
    assert dog.silent_for(round_began=1000.0, now=1000.0 + 3600) is None


def test_silence_past_the_timeout_after_a_step_and_twice_it_for_a_rounds_first_step(tmp_path):
    dog, stepped = watchdog(tmp_path)
    step_at(stepped, 1005.0)
    assert dog.silent_for(1000.0, now=1014.0) is None
    assert dog.silent_for(1000.0, now=1016.0) == 11.0
    assert record.has_stepped(str(tmp_path / "snapshots"), "0123abcd")
    # The next round (or a restarted task, which reads the marker) allows 20 s before its first step.
    dog.new_round()
    stepped.write_text("")
    assert dog.silent_for(2000.0, now=2019.0) is None and dog.silent_for(2000.0, now=2021.0) == 21.0
    assert Watchdog({**_env(tmp_path), "TORCHSWARM_STEPPED_FILE": str(stepped)}).armed
    assert watchdog(tmp_path, timeout="0")[0].silent_for(0.0, now=1e9) is None


def test_stalls_in_a_row_are_counted_until_a_round_steps_for_as_long_as_the_timeout(tmp_path):
    dog, stepped = watchdog(tmp_path, TORCHSWARM_STALL_RESTARTS="1")
    assert dog.count_stall() == 1 and not dog.given_up
    # A round that steps a little, then stalls again: still in a row, though its stall is seen
    # as long after its first step was seen as the timeout (a CI run reset the count here).
    dog.new_round()
    step_at(stepped, 1001.0)
    dog.silent_for(1000.0, now=1001.5)
    assert dog.silent_for(1000.0, now=1012.0) == 11.0
    assert dog.count_stall() == 2 and dog.given_up
    # One that steps for the whole timeout starts the count again.
    dog.new_round()
    step_at(stepped, 2001.0)
    dog.silent_for(2000.0, now=2001.0)
    step_at(stepped, 2012.0)
    dog.silent_for(2000.0, now=2012.0)
    assert dog.count_stall() == 1
