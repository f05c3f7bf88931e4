"""A job is one job: a user's own script, a SIGTERM to one rank, rank 0 moving to another host
and an image rebuilt under its tag, each through site.yml on the real swarm."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import (
    SHARED_MOUNT,
    epochs_of,
    figure,
    metrics,
    node,
    png_size,
    ranks_complete,
    results_of,
    run_playbook,
    run_site_playbook,
    shared_dir,
    stack_tasks,
    wait_for,
)

USER_IMAGE = "torchswarm/user-ddp:test"
# A user's plain DDP script: gloo, a few all-reduces, destroy_process_group() and return.
# Nothing from torchswarm or the bundled trainer.
USER_SCRIPT = """
import sys
import torch
import torch.distributed as dist

def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    total = torch.zeros(1)
    for step in range(20):
        t = torch.ones(1) * (rank + 1)
        dist.all_reduce(t)
        total += t
    print(f"user-ddp {VERSION} {sys.argv[1]} rank {rank}/{world} sum {int(total.item())}", flush=True)
    dist.destroy_process_group()
    return 0

if __name__ == "__main__":
    sys.exit(main())
"""


# A user's script shipped from the controller (job_script_src), no Dockerfile: plain DDP that
# reports each epoch through the image's helper, with a helper module beside it, and reads the
# dataset mounted from a host path (job_mounts), printing its digest on every rank. Rank 2 is
# slow before each all-reduce: the straggler.
SRC_SCRIPT = """
import hashlib
import os
import sys
import time
import torch
import torch.distributed as dist
import torchswarm
from lib.scale import SCALE

def digest(root):
    h = hashlib.sha256()
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name), "rb") as f:
            h.update(name.encode() + b"\\0" + f.read())
    return h.hexdigest()

def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for epoch in range(3):
        for _step in range(8):
            t = torch.ones(1) * (rank + 1)
            if rank == 2:
                time.sleep(0.05)
            torchswarm.ready()
            dist.all_reduce(t)
            torchswarm.step()
        loss = SCALE / (epoch + 1)
        torchswarm.report(epoch=epoch, loss=loss, samples_per_s=100.0 * world, checksum=t.item())
    staged = digest(os.environ["TORCHSWARM_DATA_DIR"])
    print(f"user-src VERSION rank {rank}/{world} data {digest('/data')} staged {staged}", flush=True)
    if rank == 0:
        model = os.urandom(3 << 20)
        with open(os.path.join(os.environ["TORCHSWARM_OUTPUT_DIR"], "model.bin"), "wb") as f:
            f.write(model)
        print(f"user-src model sha256 {hashlib.sha256(model).hexdigest()}", flush=True)
    dist.destroy_process_group()
    return 0

if __name__ == "__main__":
    sys.exit(main())
"""


def build_user_image(tmp_path, version: str) -> str:
    """An image built FROM the bundled one, as the README tells users to; returns its ID."""
    context = tmp_path / f"context-{version}"
    context.mkdir()
    (context / "my_ddp.py").write_text(USER_SCRIPT.replace("VERSION", repr(version)))
    (context / "Dockerfile").write_text("FROM torchswarm/trainer:latest\nCOPY my_ddp.py /workspace/\n")
    subprocess.run(["docker", "build", "-q", "-t", USER_IMAGE, str(context)], check=True, capture_output=True)
    return subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", USER_IMAGE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def assert_only_the_new_layer_went_out(result) -> None:
    """Every node held the bundled image, so it was sent only the layer the user's image adds."""
    streamed = result.streamed()
    assert sorted(streamed) == ["node0", "node1", "node2"], streamed
    for host, (held, layers) in streamed.items():
        assert held == layers - 1, f"{host} was sent {layers - held} of {layers} layers"


def service_logs(stack: str, host: str) -> str:
    return node("node0").run(f"docker service logs --raw {stack}_{host} 2>&1").stdout


@pytest.fixture
def user_job(inventory):
    inventory["all"]["vars"].update(
        image_name=USER_IMAGE,
        job_name="user-ddp",
        job_script="my_ddp.py",
        job_wait_timeout=180,
        job_wait_interval=1,
    )
    return inventory


# make test runs one (CI's time budget); make benchmark-user-script runs the scenario with ten.
RUNS = int(os.environ.get("TORCHSWARM_USER_SCRIPT_RUNS", "1"))


def test_a_users_own_ddp_script_completes_runs_in_a_row(user_job, tmp_path):
    """Before: a rank aborted at interpreter exit and the job hung, or the summary failed on a
    metrics file only the bundled trainer writes."""
    build_user_image(tmp_path, "v1")
    walls = []
    for run in range(1, RUNS + 1):
        user_job["all"]["vars"]["job_script_args"] = [f"run-{run}"]  # a new generation each time
        started = time.monotonic()
        result = run_site_playbook(user_job, tmp_path)
        walls.append(time.monotonic() - started)
        assert result.rc == 0, f"run {run} failed"
        if run == 1:
            assert_only_the_new_layer_went_out(result)
        assert "job user-ddp: my_ddp.py finished on 3 nodes, world size 3" in result.output
        for host in ("node0", "node1", "node2"):
            assert f"user-ddp v1 run-{run} rank" in service_logs("user-ddp", host)
    figure(
        f"user script: {len(walls)} of {RUNS} runs completed; site.yml wall s: {[round(w) for w in walls]}"
    )

    # Nothing changed: nothing redeployed, nothing restarted.
    before = {s: [t["ID"] for t in h] for s, h in stack_tasks("user-ddp").items()}
    again = run_site_playbook(user_job, tmp_path)
    assert again.rc == 0
    again.assert_unchanged("node0", "node1", "node2")
    assert {s: [t["ID"] for t in h] for s, h in stack_tasks("user-ddp").items()} == before


def dataset_digest(root: Path) -> str:
    """As SRC_SCRIPT computes it on every rank."""
    h = hashlib.sha256()
    for path in sorted(root.iterdir()):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def test_a_script_from_the_controller_on_a_host_path_and_a_staged_dataset_reports_and_a_change_redeploys(
    inventory, tmp_path
):
    # The dataset is on a filesystem every node mounts (a directory of this machine), as a team's
    # share is on its hosts; the job mounts that host path read-only in every rank.
    data = shared_dir() / "user-src-data"
    data.mkdir(exist_ok=True)
    for i in range(3):
        (data / f"part-{i}.bin").write_bytes(os.urandom(64 * 1024))
    data_digest = dataset_digest(data)
    inventory["all"]["vars"]["job_mounts"] = [{"source": f"{SHARED_MOUNT}/user-src-data", "target": "/data"}]
    # And a dataset on the controller, staged on every node (job_data_src) down a chain.
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "shard-0.bin").write_bytes(os.urandom(512 * 1024))
    (staged / "labels.txt").write_text("v1\n")
    inventory["all"]["vars"].update(job_data_src=str(staged), job_data_target="/staged")
    # Its completion record on the shared filesystem (job_snapshot_dir), where the summary reads it.
    (shared_dir() / "snapshots").mkdir(exist_ok=True)
    inventory["all"]["vars"]["job_snapshot_dir"] = f"{SHARED_MOUNT}/snapshots"
    src = tmp_path / "train"
    (src / "lib").mkdir(parents=True)
    (src / "lib" / "__init__.py").write_text("")
    (src / "lib" / "scale.py").write_text("SCALE = 2.0\n")
    (src / "my_ddp.py").write_text(SRC_SCRIPT.replace("VERSION", "v1"))
    inventory["all"]["vars"].update(
        job_name="user-src",
        job_script="my_ddp.py",
        job_script_src=str(src),
        job_wait_interval=1,
        job_straggler_epochs=2,
    )

    result = run_site_playbook(inventory, tmp_path)

    assert result.rc == 0
    assert "user-src: epoch 1, loss 2, 300 samples/s, checksum 6, world size 3" in result.output
    assert "user-src: epoch 3, loss 0.6667" in result.output
    assert "job user-src: 3 epochs, final loss 0.6667" in result.output
    run = results_of("user-src")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["epochs_trained"] == [0, 1, 2] and summary["world_size"] == 3
    # What rank 0 wrote to TORCHSWARM_OUTPUT_DIR came back, the bytes the script wrote.
    printed = re.search(r"user-src model sha256 ([0-9a-f]{64})", service_logs("user-src", "node0")).group(1)
    assert hashlib.sha256((run / "output" / "model.bin").read_bytes()).hexdigest() == printed
    assert summary["output"]["files"] == [{"path": "model.bin", "size": 3 << 20, "sha256": printed}]
    assert "output: 1 file(s), 3145728 bytes, from node0 in output/" in result.output
    # A user's script reports no wall time: it is the completion record's, read on the shared directory.
    assert summary["wall_s"] > 0
    assert list((shared_dir() / "snapshots" / "user-src" / "node0" / ".torchswarm").glob("complete-*.json"))
    assert [epoch for epoch, _unused in summary["series"]["loss"]] == [1, 2, 3]  # the plot holds its epochs
    assert png_size(run / "loss.png") == (800, 450) and png_size(run / "throughput.png") == (800, 450)
    # The slow rank, named with its host while the job ran, in the summary and in status.yml's table.
    assert re.search(
        r"user-src: straggler: rank 2 on node2 takes [\d.]+x the median rank's own time", result.output
    )
    assert [(s["rank"], s["host"]) for s in summary["stragglers"]] == [(2, "node2")]
    assert sorted(summary["series"]["rank_step_s"]) == ["rank 0 (node0)", "rank 1 (node1)", "rank 2 (node2)"]
    assert png_size(run / "rank_speed.png") == (800, 450)
    status = run_playbook("../../playbooks/status.yml", inventory, tmp_path)
    assert status.rc == 0 and "speed of each rank in epoch 3" in status.output
    assert re.search(r"2 +node2 .* straggler: [\d.]+x the median", status.output)
    for host in ("node0", "node1", "node2"):
        logs = service_logs("user-src", host)
        assert f"data {data_digest}" in logs, f"{host} did not read the host path dataset"
        assert f"staged {dataset_digest(staged)}" in logs, f"{host} did not read the staged dataset"
        assert "user-src v1 rank" in logs
    # Down a chain from the controller, each node passing it on as it arrived.
    assert_one_chain(staged_from(result))

    (src / "my_ddp.py").write_text(SRC_SCRIPT.replace("VERSION", "v2"))
    (staged / "labels.txt").write_text("v2\n")
    again = run_site_playbook(inventory, tmp_path)

    assert again.rc == 0 and results_of("user-src") != run, "a changed script is a new run"
    assert_one_chain(staged_from(again))
    for host in ("node0", "node1", "node2"):
        logs = service_logs("user-src", host)
        assert "user-src v2 rank" in logs and f"staged {dataset_digest(staged)}" in logs, host
        versions = node(host).check_output("ls /var/lib/torchswarm/data/user-src").split()
        assert len(versions) == 1 and versions[0].startswith(f"sha256-{staged_digest(again)}"), versions
    configs = node("node0").check_output("docker config ls --format '{{.Name}}'").split()
    assert len([c for c in configs if c.startswith("user-src_script_")]) == 3  # the old my_ddp.py's went

    # Nothing changed: nothing is sent, nothing redeployed.
    idle = run_site_playbook(inventory, tmp_path)
    assert idle.rc == 0 and staged_from(idle) == {}
    idle.assert_unchanged("node0", "node1", "node2")


def staged_from(run) -> dict[str, str]:
    """Each node the job role staged the dataset on, and the host it came from."""
    text = re.sub(r"\s+", " ", run.output)
    return dict(
        re.findall(
            r"ok: \[(\w+)\] => \{? ?\"?msg\"?: '?\"?dataset sha256:\w+: [\d.]+ \w+ from (\w+) in", text
        )
    )


def assert_one_chain(senders: dict[str, str]) -> None:
    """The three nodes received from one chain: the controller sent to one, each of the others
    got it from the node before it (in the play's order of hosts)."""
    order, sender = [], "localhost"
    while (receiver := next((r for r, s in senders.items() if s == sender), None)) and receiver not in order:
        order.append(receiver)
        sender = receiver
    assert sorted(order) == ["node0", "node1", "node2"] and len(senders) == 3, senders


def staged_digest(run) -> str:
    """The start of the hex digest of the dataset the run staged, as the received lines show it."""
    found = set(re.findall(r"dataset sha256:(\w+):", run.output))
    assert len(found) == 1, found
    return found.pop()


def test_an_image_rebuilt_under_the_same_tag_is_redeployed_and_waited_for(user_job, tmp_path):
    """Before: loaded onto the nodes and never deployed; the wait could read the old tasks."""
    user_job["all"]["vars"]["job_script_args"] = [f"run-{RUNS}"]  # as the last run above
    new_id = build_user_image(tmp_path, "v2")

    result = run_site_playbook(user_job, tmp_path)

    assert result.rc == 0
    assert_only_the_new_layer_went_out(result)
    assert "job user-ddp: my_ddp.py finished on 3 nodes" in result.output
    for host in ("node0", "node1", "node2"):
        assert f"user-ddp v2 run-{RUNS} rank" in service_logs("user-ddp", host)
        env = node("node0").check_output(
            f"docker service inspect -f '{{{{json .Spec.TaskTemplate.ContainerSpec.Env}}}}' user-ddp_{host}"
        )
        assert f"TORCHSWARM_IMAGE_ID={new_id}" in env


# A user's script with its own resume (the step it reached, in its node's snapshot volume) that
# reports 4 epochs of 10 steps. Rank 1 stops answering once, mid-epoch, its process alive and its
# host up (a deadlocked DataLoader, a filesystem that hangs); the others wait in all_reduce.
STALLING_SCRIPT = """
import os, time
import torch
import torch.distributed as dist
import torchswarm

def wait_for_data():
    time.sleep(3600)

dist.init_process_group("gloo")
snapshots = os.environ["TORCHSWARM_SNAPSHOT_DIR"]
reached = os.path.join(snapshots, "reached")
step = int(open(reached).read()) if os.path.exists(reached) else 0
while step < 40:
    if dist.get_rank() == 1 and step == 15 and not os.path.exists(os.path.join(snapshots, "hung")):
        open(os.path.join(snapshots, "hung"), "w").close()
        wait_for_data()
    t = torch.ones(1)
    dist.all_reduce(t)
    step += 1
    torchswarm.step()
    open(reached, "w").write(str(step))
    if step % 10 == 0:
        torchswarm.report(epoch=step // 10 - 1, loss=1.0 / step)
    time.sleep(0.2)
dist.destroy_process_group()
"""


def test_a_rank_stuck_with_its_host_up_is_found_by_the_watchdog_and_the_job_finishes(inventory, tmp_path):
    """Before: every rank waited in the collective until gloo's 30-minute timeout."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "stalling.py").write_text(STALLING_SCRIPT)
    inventory["all"]["vars"].update(
        job_name="stall",
        job_script="stalling.py",
        job_script_src=str(src),
        job_stall_timeout=20,
        job_wait_interval=1,
    )
    run = run_site_playbook(inventory, tmp_path)

    assert run.rc == 0
    found = re.search(
        r"stall: job stalled: no step on stall_node\d for (\d+) s \(stall 1 in a row\)", run.output
    )
    assert found and 20 <= int(found.group(1)) < 60, run.output[-3000:]
    # The stuck rank named, where it is, from its stacks (the others wait in all_reduce for it).
    assert re.search(r"rank 1 is stuck at stalling\.py:\d+ in wait_for_data", run.output), run.output[-3000:]
    summary = json.loads((results_of("stall") / "summary.json").read_text())
    assert summary["state"] == "complete" and summary["metrics"]["epochs_trained"] == [0, 1, 2, 3]
    # The stuck worker's stack, printed before the round was ended, kept on the controller.
    logs = "".join(p.read_text() for p in (results_of("stall") / "logs").glob("*.log"))
    assert re.search(r'File ".*stalling\.py", line \d+ in wait_for_data', logs)


def test_sigterm_to_one_rank_is_a_restart_not_the_end_of_the_job(inventory, tmp_path):
    """What a Docker restart on one host does. Before: every rank saved and exited 0, and the job
    was reported complete after 3 of 10 epochs."""
    stack = "term"
    # The snapshots on a filesystem every node shares (job_snapshot_dir), the newest 3 kept.
    (shared_dir() / "snapshots").mkdir(exist_ok=True)
    snapshots = f"{SHARED_MOUNT}/snapshots"
    inventory["all"]["vars"].update(
        job_name=stack,
        job_wait=False,
        job_restart_delay="2s",
        # Long enough epochs that the signal lands mid-run (7 of 10 epochs left), no longer.
        job_trainer_args=["--dataset_size", "32768"],
        job_snapshot_dir=snapshots,
        job_snapshot_keep=3,
        # Above the share each of three ranks gets of this machine's two CPUs: set, never binding.
        job_cpus=0.9,
    )
    assert run_site_playbook(inventory, tmp_path).rc == 0
    wait_for(lambda: 2 in epochs_of(metrics(stack, snapshot_dir=snapshots)), 300, "epoch 2 to finish")
    label = f"label=com.docker.swarm.service.name={stack}_node1"
    container = node("node1").check_output(f"docker ps -q --filter {label}")
    # The engine that runs the rank's container applied job_cpus to it.
    nano_cpus = node("node1").check_output(f"docker inspect -f '{{{{.HostConfig.NanoCpus}}}}' {container}")
    assert nano_cpus == "900000000", f"node1's rank runs with NanoCpus {nano_cpus}, not 0.9 CPUs"
    node("node1").check_output(f"docker kill -s TERM {container}")
    killed = time.monotonic()

    wait_for(lambda: ranks_complete(stack, 3), 600, f"{stack} to complete after the SIGTERM")
    figure(f"SIGTERM to one rank: the job completed {time.monotonic() - killed:.0f} s after it")
    records = metrics(stack, snapshot_dir=snapshots)
    assert any(r["event"] == "stopped" for r in records), "the stop did not save a snapshot"
    assert epochs_of(records) == list(range(10)), "an epoch was counted twice or lost"
    summaries = [r for r in records if r["event"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["resumed_from"]["epoch"] >= 2
    assert len(stack_tasks(stack)[f"{stack}_node1"]) > 1, "the stopped rank was not restarted"
    for host in ("node0", "node1", "node2"):
        kept = sorted(p.name for p in (shared_dir() / "snapshots" / stack / host).glob("snapshot-*.pt"))
        assert len(kept) == 3 and kept[-1] == "snapshot-000010-00000000.pt", f"{host} keeps {kept}"
    assert f"{stack}-snapshots" not in node("node0").check_output("docker volume ls -q").split()


def test_rank0_moves_to_a_host_without_snapshots_and_the_job_resumes(inventory, tmp_path):
    """After test_4 (ddp on four nodes, 14 epochs): node3 becomes rank 0, with its copy of the
    snapshots gone (as on a host that never held them). Before: training started over."""
    volume = "/var/lib/docker/volumes/ddp-snapshots/_data"
    node("node3").check_output(f"rm -f {volume}/snapshot-*.pt {volume}/metrics.jsonl")
    inventory["workers"]["hosts"]["node3"] = {"job_node_rank": 0}
    for rank, host in enumerate(("node0", "node1", "node2"), start=1):
        group = "managers" if host == "node0" else "workers"
        inventory[group]["hosts"][host] = {"job_node_rank": rank}
    inventory["all"]["vars"]["job_epochs"] = 16
    started = time.monotonic()

    run = run_site_playbook(inventory, tmp_path)

    figure(f"rank 0 moved: site.yml took {time.monotonic() - started:.0f} s")
    assert run.rc == 0
    records = metrics("ddp", rank0="node3")
    assert epochs_of(records) == list(range(16))
    summary = [r for r in records if r["event"] == "summary"][-1]
    assert summary["resumed_from"] == {"epoch": 14, "step": 0}
    assert "rank 0 resumes at epoch 14 step 0" in service_logs("ddp", "node3")
