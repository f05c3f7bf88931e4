"""The image's launcher and worker wrapper, through real torchrun, with scripts the tests write:
a user's plain DDP script gets what the bundled trainer gets, with no change to the script."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from conftest import finish, torchrun, wait_for
from torchswarm import EXIT_DO_NOT_RETRY, record
from torchswarm.launcher import secret_environment, world_size, wrap_workers

# A user's own script: plain DDP over gloo, nothing from torchswarm. Its last line registers a
# C-level exit handler that aborts, as a C++ static destructor does when torch's threads are
# still joinable at interpreter exit ("terminate called without an active exception"; a real
# but rare failure, see benchmarks/trainer_exits.py): here it happens on every run.
USER_SCRIPT = """
import ctypes, os, sys, time
import torch
import torch.distributed as dist

def main():
    dist.init_process_group("gloo")
    t = torch.ones(1) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    print(f"user script: rank {dist.get_rank()} sum {int(t.item())}"
          f" ifname={os.environ.get('GLOO_SOCKET_IFNAME', '-')}", flush=True)
    if os.environ.get("USER_SCRIPT_SLEEP"):
        open(os.environ["USER_SCRIPT_STARTED"] + str(dist.get_rank()), "w").close()
        time.sleep(float(os.environ["USER_SCRIPT_SLEEP"]))
    dist.destroy_process_group()
    libc = ctypes.CDLL(None)
    libc.__cxa_atexit(ctypes.cast(libc.abort, ctypes.c_void_p), None, None)
    return int(os.environ.get("USER_SCRIPT_EXIT", "0"))

if __name__ == "__main__":
    sys.exit(main())
"""


@pytest.fixture
def user_script(tmp_path: Path) -> str:
    path = tmp_path / "my_ddp.py"
    path.write_text(USER_SCRIPT)
    return str(path)


def launch(script: str, snapdir: Path, generation: str = "0123abcd", **env: str):
    return torchrun(
        [],
        script=script,
        entrypoint=True,
        env={"TORCHSWARM_SNAPSHOT_DIR": str(snapdir), "TORCHSWARM_GENERATION": generation, **env},
    )


def test_a_plain_script_that_aborts_at_interpreter_exit_aborts_under_bare_torchrun(user_script):
    """The failure the wrapper is for, shown without it: the same script, torchrun alone."""
    rc, out = finish(torchrun([], script=user_script))
    assert rc != 0
    assert "SIGABRT" in out or "Signal 6" in out


def test_the_launcher_runs_a_users_plain_script_to_a_clean_finish_and_records_it(user_script, snapdir):
    rc, out = finish(launch(user_script, snapdir))

    assert rc == 0, out
    assert out.count("user script: rank") == 2 and "sum 3" in out
    done = record.read_complete(str(snapdir), "0123abcd")
    assert done is not None and done["world_size"] == 2 and done["wall_s"] > 0


def test_a_rank_started_after_its_generation_finished_exits_0_at_once(user_script, snapdir):
    assert finish(launch(user_script, snapdir))[0] == 0

    # The same generation again, with a script that would now fail: it is not run at all.
    started = time.monotonic()
    rc, out = finish(launch(user_script, snapdir, USER_SCRIPT_EXIT="1"))

    assert rc == 0, out
    assert "generation 0123abcd finished at" in out and "nothing left to run here" in out
    assert "user script" not in out
    assert time.monotonic() - started < 10

    # Another generation (a redeploy with something changed) runs.
    rc, out = finish(launch(user_script, snapdir, generation="feedbeef", USER_SCRIPT_EXIT="1"))
    assert rc == 1 and "user script: rank" in out
    assert record.read_complete(str(snapdir), "feedbeef") is None


def test_sigterm_is_a_stop_not_a_finish(user_script, snapdir, tmp_path):
    started = tmp_path / "started-"
    proc = launch(user_script, snapdir, USER_SCRIPT_SLEEP="30", USER_SCRIPT_STARTED=str(started))
    wait_for(lambda: all(Path(f"{started}{rank}").exists() for rank in (0, 1)), timeout=60)
    proc.send_signal(signal.SIGTERM)  # what Docker sends the container's PID 1

    rc, out = finish(proc, timeout=60)

    assert rc != 0
    assert "stopped by a signal" in out
    assert record.read_complete(str(snapdir), "0123abcd") is None


def test_a_script_that_reports_bad_input_is_not_retried_and_not_recorded(snapdir):
    rc, _unused = finish(
        torchrun(
            ["2", "1", "--batch_size", "5000"],
            entrypoint=True,
            env={"TORCHSWARM_SNAPSHOT_DIR": str(snapdir), "TORCHSWARM_GENERATION": "0123abcd"},
        )
    )
    assert rc == EXIT_DO_NOT_RETRY
    assert record.read_complete(str(snapdir), "0123abcd") is None


def test_the_launcher_picks_the_socket_interface_for_any_script(user_script):
    rc, out = finish(
        torchrun([], script=user_script, entrypoint=True, env={"TORCHSWARM_SUBNET": "127.0.0.0/8"})
    )
    assert rc == 0, out
    assert out.count("ifname=lo") == 2
    assert "torchswarm: using interface lo for 127.0.0.0/8" in out
    # What the container got, checked once before torchrun starts, as a record the wait reads.
    checks = [json.loads(x) for x in out.splitlines() if x.startswith('{"event": "host_check"')]
    assert len(checks) == 1 and checks[0]["interface"] == "lo" and checks[0]["refused"] is None
    assert f"torchswarm: host check: {checks[0]['line']}" in out


def test_secrets_are_exported_byte_for_byte(tmp_path):
    (tmp_path / "API_TOKEN").write_bytes(b"s3cr$t value\nline two\xff")
    env = secret_environment("API_TOKEN", str(tmp_path))
    assert env["API_TOKEN"].encode("utf-8", "surrogateescape") == b"s3cr$t value\nline two\xff"
    assert secret_environment("", str(tmp_path)) == {}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ["torchrun", "--nnodes=2", "--node_rank=1", "training_code.py", "10", "2", "--batch_size", "32"],
            [
                "torchrun",
                "--nnodes=2",
                "--node_rank=1",
                "-m",
                "torchswarm.worker",
                "training_code.py",
                "10",
                "2",
                "--batch_size",
                "32",
            ],
        ),
        (
            ["/usr/bin/torchrun", "--standalone", "-m", "pkg.train", "-m", "x"],
            ["/usr/bin/torchrun", "--standalone", "-m", "torchswarm.worker", "-m", "pkg.train", "-m", "x"],
        ),
        (
            ["python3", "-m", "torch.distributed.run", "a.py"],
            ["python3", "-m", "torch.distributed.run", "-m", "torchswarm.worker", "a.py"],
        ),
        (["torchrun", "--no-python", "./a.sh", "x"], ["torchrun", "--no-python", "./a.sh", "x"]),
        (["python3", "a.py"], ["python3", "a.py"]),
        (["sleep", "1"], ["sleep", "1"]),
    ],
    ids=["script", "module", "python-m", "no-python", "python", "other"],
)
def test_torchrun_commands_get_the_worker_wrapper_and_others_run_as_they_are(command, expected):
    assert wrap_workers(command) == expected


def test_world_size_comes_from_the_workers_lines():
    assert world_size(["0 4", "1 4"]) == 4
    assert world_size([]) is None
    assert world_size(["0 ?"]) is None


def test_a_damaged_or_foreign_record_is_not_a_completion(tmp_path):
    path = Path(record.complete_path(str(tmp_path), "abc"))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert record.read_complete(str(tmp_path), "abc") is None
    path.write_text(json.dumps({"generation": "other"}))
    assert record.read_complete(str(tmp_path), "abc") is None
    with pytest.raises(ValueError, match="is not a stack hash"):
        record.complete_path(str(tmp_path), "../../etc")


def test_the_worker_exits_with_the_scripts_code(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import sys\nsys.exit(7)\n")
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "torchswarm.worker", str(script)],
        cwd=Path(__file__).resolve().parents[2] / "training",
        capture_output=True,
        check=False,
    )
    assert result.returncode == 7


def test_a_script_not_in_the_image_is_refused_before_torchrun_starts(snapdir):
    rc, out = finish(launch("no_such_script.py", snapdir))

    assert rc == EXIT_DO_NOT_RETRY, out
    assert "not retrying (exit 3): the script no_such_script.py is not in the image (no such file in " in out
    assert "torch.distributed" not in out and "rank 0" not in out  # torchrun never ran


# A user's script that fails at its start (an import the image lacks), or after a first step.
FAILS_AT_START = "import no_such_module_in_the_image\n"
FAILS_AFTER_A_STEP = "import sys\nimport torchswarm\ntorchswarm.step()\nsys.exit(1)\n"


def test_a_script_failing_before_its_first_step_gives_up_after_the_attempts_with_its_error(tmp_path, snapdir):
    """Each launch is what one restart by the swarm is: a new launcher, the same snapshot volume."""
    early, stepping = tmp_path / "early.py", tmp_path / "stepping.py"
    early.write_text(FAILS_AT_START)
    stepping.write_text(FAILS_AFTER_A_STEP)

    def start(script: Path) -> tuple[int, str]:
        env = {"TORCHSWARM_SNAPSHOT_DIR": str(snapdir), "TORCHSWARM_GENERATION": "0123abcd"}
        return finish(torchrun([], nproc=1, script=str(script), entrypoint=True, env=env))

    error = "rank 0: ModuleNotFoundError: No module named 'no_such_module_in_the_image' (early.py:1)"
    rc, out = start(early)
    assert rc not in (0, EXIT_DO_NOT_RETRY) and f"before its first step (1 of 3 tries): {error}" in out
    assert start(early)[0] != EXIT_DO_NOT_RETRY
    # A run that trained a step starts the count again, though it failed after.
    rc, out = start(stepping)
    assert rc not in (0, EXIT_DO_NOT_RETRY) and "before its first step" not in out, out
    assert "(1 of 3 tries)" in start(early)[1]
    assert "(2 of 3 tries)" in start(early)[1]

    rc, out = start(early)

    assert rc == EXIT_DO_NOT_RETRY, out
    assert f"not retrying (exit 3): the script failed 3 times in a row before its first step: {error}" in out
    assert record.read_complete(str(snapdir), "0123abcd") is None


def test_the_worker_notes_why_the_script_failed_for_the_launcher(tmp_path):
    """An exception with where it was raised; an exit code with what the script said last."""
    import subprocess

    errors = tmp_path / "errors"
    raising, arguing = tmp_path / "raising.py", tmp_path / "arguing.py"
    raising.write_text("def main():\n    raise ValueError('no data under /data')\n\nmain()\n")
    arguing.write_text("import argparse\nargparse.ArgumentParser(prog='arguing.py').parse_args()\n")
    for script, rank in ((raising, "0"), (arguing, "1")):
        subprocess.run(
            [sys.executable, "-m", "torchswarm.worker", str(script), "--epochs"],
            cwd=Path(__file__).resolve().parents[2] / "training",
            env={**os.environ, "TORCHSWARM_ERROR_FILE": str(errors), "RANK": rank},
            capture_output=True,
            check=False,
        )
    assert errors.read_text().splitlines() == [
        "rank 0: ValueError: no data under /data (raising.py:2)",
        "rank 1: exit 2: usage: arguing.py [-h] | arguing.py: error: unrecognized arguments: --epochs",
    ]
