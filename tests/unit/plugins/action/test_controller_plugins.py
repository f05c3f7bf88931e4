"""The controller-side plugins through real ansible-playbook runs on localhost: training_results
writes the run's files and plots (decoded here with Pillow), the script_files lookup reads a
user's directory and refuses what a swarm config cannot hold, the role_default lookup gives the
defaults that roles following another role's variable fall back to."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from ansible_collections.torchswarm.ddp.plugins.module_utils import _dir_stream as dir_stream

ROOT = Path(__file__).resolve().parents[4]
TASK = "x2b5kq0w3h2vd8s9g7u3n1f0c"


def playbook(
    tmp_path: Path, tasks: list[dict], *options: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    path = tmp_path / "play.yml"
    path.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        **(env or {}),
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), str(path), *options],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def task_results(run: subprocess.CompletedProcess) -> list[dict]:
    out = json.loads(run.stdout)
    return [t["hosts"]["localhost"] for play in out["plays"] for t in play["tasks"]]


def log(epochs: list[dict], service: str = "ddp_node0") -> str:
    lines = [
        f"2026-11-26T22:00:0{i}.5Z {service}.1.{TASK}@node0    | {json.dumps(r)}"
        for i, r in enumerate(epochs)
    ]
    return "\n".join([f"2026-11-26T21:59:59Z {service}.1.{TASK}@node0    | starting", *lines])


RECORDS = [
    {"event": "epoch", "epoch": 0, "loss": 1.2, "samples_per_s": 900.0, "world_size": 3, "elapsed_s": 10.0},
    {"event": "epoch", "epoch": 1, "loss": 0.7, "samples_per_s": 950.0, "world_size": 3, "elapsed_s": 20.0},
    {"event": "epoch", "epoch": 1, "loss": 0.6, "samples_per_s": 640.0, "world_size": 2, "elapsed_s": 8.0},
    {"event": "epoch", "epoch": 2, "loss": 0.4, "samples_per_s": 650.0, "world_size": 2, "elapsed_s": 16.0},
]
# Each rank's speed per epoch, in its own log (rank 1 the slower: its own part of a step).
SPEEDS = [
    [
        {"event": "rank_speed", "rank": rank, "host": f"node{rank}", "epoch": e, "world_size": 2, "steps": 30}
        | {"step_s": 0.5, "own_s": 0.1 + 0.3 * rank}
        for e in range(3)
    ]
    for rank in (0, 1)
]
INFO = {
    "state": "complete",
    "stack_hash": "3f2a9c0d1e4b5a67",
    "lost": [],
    "stack": {"services": {"node0": {"environment": {"API_KEY": "<hidden>"}}}},
    "services": [
        {"service": "ddp_node0", "rank": 0, "node": "node0", "state": "complete", "tasks": 2, "exit_code": 0},
        {"service": "ddp_node1", "rank": 1, "node": "node1", "state": "complete", "tasks": 1, "exit_code": 0},
    ],
}


def results_task(dest: Path) -> dict:
    return {
        "torchswarm.ddp.training_results": {
            "dest": str(dest),
            "name": "user-ddp",
            "script": "my_ddp.py",
            "info": INFO,
            "logs": {"ddp_node0": log(RECORDS + SPEEDS[0]), "ddp_node1": log(SPEEDS[1], "ddp_node1")},
        }
    }


def test_results_files_and_plots_written_once_and_not_in_check_mode(tmp_path):
    dest = tmp_path / "torchswarm-results"
    check = playbook(tmp_path, [results_task(dest)], "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert task_results(check)[0]["changed"] and not dest.exists()

    first = playbook(tmp_path, [results_task(dest)])
    assert first.returncode == 0, first.stdout + first.stderr
    result = task_results(first)[0]
    run = dest / "user-ddp" / "3f2a9c0d1e4b5a67"
    assert result["changed"] and result["path"] == str(run)
    assert sorted(result["files"]) == sorted(
        [
            "summary.json",
            "metrics.jsonl",
            "stack.json",
            "logs/ddp_node0.log",
            "logs/ddp_node1.log",
            "loss.png",
            "throughput.png",
            "rank_speed.png",
        ]
    )
    for name in ("loss.png", "throughput.png", "rank_speed.png"):
        with Image.open(run / name) as image:
            image.load()  # decodes every pixel: a truncated file fails here
            assert image.format == "PNG" and image.size == (800, 450)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["epochs_trained"] == [0, 1, 1, 2] and summary["world_size"] == 2
    assert [r["restarts"] for r in summary["ranks"]] == [1, 0]
    assert summary["rank0_last_lines"][0] == "starting"
    assert summary["series"]["loss"] == [[1, 1.2], [2, 0.6], [3, 0.4]]  # what loss.png shows
    assert summary["series"]["restarts"] == [2] and summary["series"]["world_sizes"] == [[1, 3], [2, 2]]
    # What rank_speed.png shows: each rank's own time per step by epoch. Of two ranks the median
    # is their mean: rank 1 takes 1.6x it for the 3 epochs.
    assert summary["stragglers"] == [
        {"rank": 1, "host": "node1", "times_median": 1.6, "epochs": 3, "slow_at_end": True}
    ]
    assert summary["series"]["rank_step_s"] == {
        "rank 0 (node0)": [[1, 0.1], [2, 0.1], [3, 0.1]],
        "rank 1 (node1)": [[1, 0.4], [2, 0.4], [3, 0.4]],
    }
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [
        0,
        1,
        1,
        2,
    ]
    assert (
        json.loads((run / "stack.json").read_text())["services"]["node0"]["environment"]["API_KEY"]
        == "<hidden>"
    )
    assert "starting" in (run / "logs" / "ddp_node0.log").read_text()
    assert result["lines"][0] == "job user-ddp: 3 epochs, final loss 0.4000"

    again = playbook(tmp_path, [results_task(dest)])
    assert again.returncode == 0 and not task_results(again)[0]["changed"], again.stdout


def test_the_plot_changes_when_a_restart_is_marked(tmp_path):
    """The restart line is drawn: the same losses without the restart draw different pixels."""
    runs = {}
    for key, records in (
        ("restart", RECORDS),
        ("plain", [dict(r, elapsed_s=10.0 * (i + 1)) for i, r in enumerate(RECORDS)]),
    ):
        task = results_task(tmp_path / key)
        task["torchswarm.ddp.training_results"]["logs"] = {"ddp_node0": log(records)}
        assert playbook(tmp_path, [task]).returncode == 0
        with Image.open(tmp_path / key / "user-ddp" / "3f2a9c0d1e4b5a67" / "loss.png") as image:
            runs[key] = image.convert("RGB").tobytes()
    assert runs["restart"] != runs["plain"]


def test_script_files_lookup_reads_a_directory_and_refuses_what_a_config_cannot_hold(tmp_path):
    src = tmp_path / "train"
    (src / "lib").mkdir(parents=True)
    (src / "my_ddp.py").write_text("import lib.util\n")
    (src / "lib" / "util.py").write_text("X = 1\n\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (src / ".hidden").write_text("no")
    read = {"ansible.builtin.debug": {"msg": f"{{{{ lookup('torchswarm.ddp.script_files', '{src}') }}}}"}}
    run = playbook(tmp_path, [read])
    assert run.returncode == 0, run.stdout
    assert task_results(run)[0]["msg"] == {"my_ddp.py": "import lib.util\n", "lib/util.py": "X = 1\n\n"}

    (src / "big.bin").write_bytes(b"\xff" * 10)
    run = playbook(tmp_path, [read])
    assert run.returncode != 0 and f"job_script_src: {src}/big.bin is not UTF-8 text" in run.stdout


@pytest.mark.parametrize(
    ("extra_vars", "expected"),
    [
        ([], ["torchswarm/trainer:latest", "ddp-net", "torchswarm/trainer:latest", "ddp"]),
        (
            ["-e", "image_name=reg.example/team/train:7 network_name=net7 job_name=run7"],
            ["reg.example/team/train:7", "net7", "reg.example/team/train:7", "run7"],
        ),
    ],
)
def test_roles_that_follow_another_roles_variable_fall_back_to_its_default(tmp_path, extra_vars, expected):
    """The job, preflight and maintenance roles' defaults read as the roles read them: with nothing
    set, the image, network and job roles' own defaults (role_default); else the variables set."""
    read_defaults = [
        {"ansible.builtin.include_vars": str(ROOT / "roles" / role / "defaults" / "main.yml")}
        for role in ("job", "preflight", "maintenance")
    ]
    show = {
        "ansible.builtin.debug": {"msg": "{{ [job_image, job_network, preflight_image, maintenance_job] }}"}
    }
    run = playbook(tmp_path, [*read_defaults, show], *extra_vars)
    assert run.returncode == 0, run.stdout
    assert task_results(run)[-1]["msg"] == expected


@pytest.mark.parametrize(
    ("terms", "error"),
    [
        ("'image', role='image'", "role_default: role image gives no default for image"),
        ("'x', role='imag'", "role_default: this collection has no role imag with defaults"),
    ],
)
def test_role_default_names_a_variable_or_role_it_cannot_find(tmp_path, terms, error):
    wrong = {"ansible.builtin.debug": {"msg": f"{{{{ lookup('torchswarm.ddp.role_default', {terms}) }}}}"}}
    run = playbook(tmp_path, [wrong])
    assert run.returncode != 0 and error in run.stdout


@pytest.mark.parametrize("missing", ["nowhere.py"])
def test_script_files_lookup_names_a_missing_source(tmp_path, missing):
    read = {
        "ansible.builtin.debug": {
            "msg": f"{{{{ lookup('torchswarm.ddp.script_files', '{tmp_path / missing}') }}}}"
        }
    }
    run = playbook(tmp_path, [read])
    assert run.returncode != 0 and "is neither a file nor a directory on the controller" in run.stdout


def test_a_dataset_is_digested_once_staged_by_data_relay_and_then_held(tmp_path):
    """The lookup and the module's three modes through ansible-playbook, receiver and sender both
    on this machine; a re-run's digest comes from the cache."""
    src, dest, cache = tmp_path / "ds", tmp_path / "host" / "data", tmp_path / "cache"
    (src / "shards").mkdir(parents=True)
    (src / "shards" / "0.bin").write_bytes(os.urandom(100_000))
    (src / "labels.csv").write_text("1,cat\n")
    port = free_port()
    relay = "torchswarm.ddp.data_relay"
    digest = f"{{{{ lookup('torchswarm.ddp.data_digest', '{src}', cache_dir='{cache}') }}}}"
    tasks = [
        {"ansible.builtin.set_fact": {"digest": digest}},
        {relay: {"mode": "held", "path": str(dest), "digest": "{{ digest }}"}},
        {
            relay: {
                "mode": "receive",
                "path": str(dest),
                "digest": "{{ digest }}",
                "port": port,
                "token": "t0k",
            },
            "async": 60,
            "poll": 0,
            "register": "receiver",
        },
        {relay: {"mode": "send", "path": str(src), "forward": ["127.0.0.1"], "port": port, "token": "t0k"}},
        {
            "ansible.builtin.async_status": {"jid": "{{ receiver.ansible_job_id }}"},
            "register": "received",
            "until": "received.finished",
            "retries": 30,
            "delay": 1,
        },
        {relay: {"mode": "held", "path": str(dest), "digest": "{{ digest }}"}},
    ]
    run = playbook(tmp_path, tasks)
    assert run.returncode == 0, run.stdout
    results = task_results(run)
    assert results[1]["held"] is False and results[5]["held"] is True and not results[5]["changed"]
    assert results[3]["sent_to"] == f"127.0.0.1:{port}" and results[4]["bytes"] == 100_006
    [version] = dest.iterdir()
    assert version.name == "sha256-" + results[0]["ansible_facts"]["digest"].removeprefix("sha256:")
    assert (version / "shards" / "0.bin").read_bytes() == (src / "shards" / "0.bin").read_bytes()
    assert len(list(cache.iterdir())) == 1
    # Unchanged files: the digest is the cached one (a file's bytes changed under the same size
    # and time would not be seen; a real change moves its time).
    again = playbook(tmp_path, [{"ansible.builtin.debug": {"msg": digest}}])
    assert task_results(again)[0]["msg"] == results[0]["ansible_facts"]["digest"]

    missing = f"{{{{ lookup('torchswarm.ddp.data_digest', '{tmp_path / 'nowhere'}') }}}}"
    run = playbook(tmp_path, [{"ansible.builtin.debug": {"msg": missing}}])
    assert (
        run.returncode != 0
        and "job_data_src: " in run.stdout
        and "neither a file nor a directory" in run.stdout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_later_read_that_misses_lines_keeps_what_was_saved_and_new_lines_are_added(tmp_path):
    """docker service logs can miss a remote node's lines on one read (moby#33183)."""
    dest = tmp_path / "results"
    full = results_task(dest)
    assert playbook(tmp_path, [full]).returncode == 0
    log_file = dest / "user-ddp" / "3f2a9c0d1e4b5a67" / "logs" / "ddp_node0.log"
    saved = log_file.read_text()

    partial = results_task(dest)
    partial["torchswarm.ddp.training_results"]["logs"]["ddp_node0"] = log(RECORDS[:2])
    run = playbook(tmp_path, [partial])
    assert run.returncode == 0 and not task_results(run)[0]["changed"] and log_file.read_text() == saved

    more = results_task(dest)
    late = f"2026-11-26T22:00:09Z ddp_node0.1.{TASK}@node0    | torchswarm: a late line"
    more["torchswarm.ddp.training_results"]["logs"]["ddp_node0"] = log(RECORDS) + "\n" + late
    run = playbook(tmp_path, [more])
    assert run.returncode == 0 and task_results(run)[0]["changed"]
    assert log_file.read_text() == saved + late + "\n"


def slow_receiver(port: int, token: str, rate: int) -> threading.Thread:
    """A receiving end that takes ``rate`` bytes a second (as a busy link would), speaking the
    dataset protocol: the sender's progress is what is seen moving."""
    server = socket.create_server(("127.0.0.1", port))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)

    def serve() -> None:
        with server:
            conn, _unused = server.accept()
            with conn:
                assert dir_stream.header_problem(dir_stream.read_line(conn), token) is None
                files = dir_stream.json_line(conn, "file list")["files"]
                conn.sendall(b"GO\n")
                total, got, began = sum(f["size"] for f in files), 0, time.monotonic()
                while got < total:
                    allowed = int(rate * (time.monotonic() - began)) - got
                    if allowed <= 0:
                        time.sleep(0.02)
                        continue
                    got += len(conn.recv(min(allowed, total - got, 1 << 16)))
                dir_stream.json_line(conn, "digests")
                conn.sendall(b"OK\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_relay_wait_prints_how_far_a_transfer_has_got_and_returns_its_result(tmp_path):
    """data_relay sends in the background with a progress file; relay_wait waits for that job
    through async_status and prints lines read from the file, with no retry messages."""
    src, progress = tmp_path / "ds", tmp_path / "transfers" / "data-node1.json"
    src.mkdir()
    # Five times what loopback buffers hold (some 5 MB), so that most goes at the receiver's pace,
    # over 8 s: a loaded machine (the other lane of make test) still prints a line on the way.
    (src / "0.bin").write_bytes(os.urandom(24_000_000))
    port = free_port()
    receiver = slow_receiver(port, "t0k", rate=3_000_000)
    send = {"mode": "send", "path": str(src), "forward": ["127.0.0.1"], "port": port, "token": "t0k"}
    tasks = [
        {
            "torchswarm.ddp.data_relay": {**send, "progress": str(progress)},
            "async": 120,
            "poll": 0,
            "register": "sending",
        },
        {
            "torchswarm.ddp.relay_wait": {
                "jid": "{{ sending.ansible_job_id }}",
                "what": "dataset to node1",
                "progress": str(progress),
                "every": 1,
                "interval": 0.2,
            },
            "register": "sent",
        },
        {"ansible.builtin.copy": {"content": "{{ sent | to_json }}", "dest": str(tmp_path / "sent.json")}},
    ]
    run = playbook(tmp_path, tasks, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})
    receiver.join(5)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("dataset to node1: ")]
    unit = {"B": 1, "KB": 1e3, "MB": 1e6}
    # How much each line says was sent, the last line's "all 24.0 MB sent" included.
    sent_bytes = [
        int(float(m[1]) * unit[m[2]])
        for m in (re.search(r": (?:all )?([\d.]+) (B|KB|MB) (?:of |sent in)", line) for line in lines)
        if m
    ]
    assert len(sent_bytes) >= 2 and sent_bytes == sorted(sent_bytes) and sent_bytes[-1] > sent_bytes[0], lines
    assert all("of 24.0 MB (" in line for line in lines if " of " in line)
    # Once something was seen sent, the file's removal at the end is not read as nothing sent.
    first_sent = next(i for i, line in enumerate(lines) if " of " in line or "sent in" in line)
    assert not any("nothing sent yet" in line for line in lines[first_sent:]), lines
    assert "RETRYING" not in run.stdout
    result = json.loads((tmp_path / "sent.json").read_text())
    assert (
        result["bytes"] == 24_000_000 and result["sent_to"] == f"127.0.0.1:{port}" and result["waited_s"] > 2
    )
    assert not progress.exists()  # removed when the transfer ended


def test_relay_wait_fails_with_the_jobs_own_failure_and_on_its_timeout(tmp_path):
    def background(command: str, name: str) -> dict:
        return {"ansible.builtin.command": command, "async": 60, "poll": 0, "register": name}

    def wait(name: str, timeout: int) -> dict:
        args = {"jid": f"{{{{ {name}.ansible_job_id }}}}", "what": name, "timeout": timeout, "interval": 0.2}
        return {"torchswarm.ddp.relay_wait": args, "ignore_errors": True}

    tasks = [
        background("sh -c 'exit 3'", "failing"),
        wait("failing", 30),
        background("sleep 20", "slow"),
        wait("slow", 1),
    ]
    run = playbook(tmp_path, tasks)
    assert run.returncode == 0, run.stdout
    failing, slow = task_results(run)[1], task_results(run)[3]
    assert failing["failed"] and failing["rc"] == 3
    assert slow["failed"] and slow["msg"] == "slow: not done after 1 s"


def test_relay_wait_sees_the_end_at_once_with_one_module_run_per_line_not_per_second(tmp_path):
    """Between two status reads, one wait_for on the sender watches the job's results file: a
    6 s job is seen finished within about a second, after two async_status runs, not six."""
    tasks = [
        {"ansible.builtin.command": "sleep 6", "async": 60, "poll": 0, "register": "slow"},
        {
            "torchswarm.ddp.relay_wait": {"jid": "{{ slow.ansible_job_id }}", "what": "slow", "every": 30},
            "register": "waited",
        },
        {
            "ansible.builtin.copy": {
                "content": "{{ waited | to_json }}",
                "dest": str(tmp_path / "waited.json"),
            }
        },
    ]
    run = playbook(tmp_path, tasks, "-vvv", env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})
    assert run.returncode == 0, run.stdout[-2000:]
    waited = json.loads((tmp_path / "waited.json").read_text())
    # Seen finished well before the next status read, 30 s on (every: 30); a loaded machine (the
    # other lane of make test) adds seconds to each module run, so the bound is that, not 6 s.
    assert waited["rc"] == 0 and 5.5 < waited["waited_s"] < 20.0, waited["waited_s"]
    runs = re.findall(r"Using module file \S+/(async_status|wait_for)\.py", run.stdout)
    assert runs.count("async_status") <= 3 and runs.count("wait_for") >= 1, runs
