"""The image role on limited links: how long the training image takes to reach N hosts.

Every host's uplink is limited with tc (a token bucket on its eth0, inside the node container,
which has NET_ADMIN), and so is the controller's (the same on the test network's bridge on this
machine, through which the controller reaches the nodes). For N = 3, 6 and 12 fresh hosts it
runs the image role with each image_fanout plan: chain (each host passes the stream on as it
arrives; ideal: one link-time), rounds (holders send on, ideal: ceil(log2(N+1)) link-times) and
star (the controller sends to every host itself; N link-times). It prints the time to reach all
hosts and the ratio to one link-time: the rounds plan's first transfer, one image from the
controller to one host over one limited link (docker load included).

    make benchmark-image        (needs a Docker engine and the test images; about 20 minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "torchswarm/trainer:latest"
NETWORK = "torchswarm-test"  # molecule/resources/vars/nodes.yml
RELAY_TASKS = (
    "Listen for the image",
    # The send runs in the background; its wait returns the send's result (bytes, seconds).
    "Wait for the sender, showing the image's progress",
    "Read the receiver's result",
)


def run(*cmd: str, env: dict | None = None, capture: bool = False) -> str:
    out = subprocess.run(
        cmd, cwd=ROOT, check=True, text=True, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
    )  # fmt: skip
    return out.stdout if capture else ""


def nodes_arg(nodes: list[str]) -> str:
    return json.dumps({"nodes_platforms": [{"name": n} for n in nodes]})


def write_inventory(path: Path, nodes: list[str], **variables) -> Path:
    path.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "managers": {"hosts": {nodes[0]: {}}},
                        "workers": {"hosts": {n: {} for n in nodes[1:]}},
                    },
                    "vars": {
                        "ansible_connection": "community.docker.docker",
                        "docker_package_source": "distribution",
                        "image_name": IMAGE,
                        **variables,
                    },
                }
            }
        )
    )
    return path


def playbook(path: Path, role: str) -> Path:
    """The role on every host, after the validate role (which notes each host's address)."""
    validate = "- hosts: all\n  gather_facts: false\n  roles: [torchswarm.ddp.validate]\n"
    path.write_text(f"{validate}- hosts: all\n  gather_facts: false\n  roles: [torchswarm.ddp.{role}]\n")
    return path


def limit_links(nodes: list[str], rate: str) -> None:
    """Each node's uplink, and the controller's (this machine's side of the nodes' bridge)."""
    bucket = ["root", "tbf", "rate", rate, "burst", "512kb", "latency", "400ms"]
    for name in nodes:
        run("docker", "exec", name, "tc", "qdisc", "replace", "dev", "eth0", *bucket)
    run("tc", "qdisc", "replace", "dev", bridge(), *bucket)


def unlimit_controller() -> None:
    try:
        device = bridge()
    except subprocess.CalledProcessError:
        return  # the nodes' network is gone, and its bridge with it
    subprocess.run(["tc", "qdisc", "del", "dev", device, "root"], check=False, capture_output=True)


def bridge() -> str:
    network_id = run("docker", "network", "inspect", "--format", "{{.Id}}", NETWORK, capture=True).strip()
    return f"br-{network_id[:12]}"


def relay_run(inventory: Path, play: Path, relay_tasks: tuple[str, str, str]) -> dict:
    """One run of a playbook that relays something to the hosts (``relay_tasks``: the listen,
    send's wait and result tasks' names): their wall time, the rounds and the first transfer."""
    out = run(
        "ansible-playbook", str(play), "-i", str(inventory),
        # Forks: every transfer of a round at once (Ansible's default of 5 would queue them).
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_FORKS": "16"},
        capture=True,
    )  # fmt: skip
    tasks = [t for play in json.loads(out)["plays"] for t in play["tasks"]]
    # Names come as "<role> : <task>".
    relay = [t for t in tasks if t["task"]["name"].split(" : ")[-1] in relay_tasks]
    ran = [t for t in relay if any(not r.get("skipped") for r in t["hosts"].values())]
    if not ran:
        raise SystemExit(f"no transfer ran; the playbook's output:\n{out[-4000:]}")

    def moment(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    start = moment(ran[0]["task"]["duration"]["start"])
    end = moment(ran[-1]["task"]["duration"]["end"])
    sends = [t for t in ran if t["task"]["name"].endswith(relay_tasks[1])]
    first = next(r for r in sends[0]["hosts"].values() if not r.get("skipped"))
    return {
        "seconds": (end - start).total_seconds(),
        "rounds": len(sends),
        "first_send": first["seconds"],
        "wire_mb": first["bytes"] / 1e6,
    }


def with_rounds_first(plans: list[str]) -> list[str]:
    """The plans to run, rounds among them and first: its first transfer is the link-time the
    others are measured in."""
    return sorted(set(plans) | {"rounds"}, key=["rounds", "chain", "star"].index)


def print_table(rows: list[dict]) -> None:
    """Each run's time to reach all hosts, in link-times and against its plan's ideal: one
    link-time (chain), ceil(log2(N+1)) (rounds) or N (star)."""
    print(" hosts  plan    seconds  link-time s  x link-times  ideal  x ideal")
    link = {row["hosts"]: row["first_send"] for row in rows if row["plan"] == "rounds"}
    for row in rows:
        n = row["hosts"]
        ideal = {"chain": 1, "rounds": math.ceil(math.log2(n + 1)), "star": n}[row["plan"]]
        times = row["seconds"] / link[n]
        target = " (target <= 1.5 at 12 hosts)" if row["plan"] == "chain" else ""
        print(
            f" {n:5d}  {row['plan']:6s}  {row['seconds']:7.1f}  {link[n]:11.1f}  {times:12.2f}"
            f"  {ideal:5d}  {times / ideal:7.2f}{target}"
        )


def remove_image(nodes: list[str]) -> None:
    for name in nodes:  # fresh nodes have none: no error to show
        subprocess.run(
            ["docker", "exec", name, "docker", "image", "rm", "--force", IMAGE],
            capture_output=True,
            check=False,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--rate", default="200mbit", help="each host's and the controller's uplink (tc)")
    parser.add_argument(
        "--plans", nargs="+", default=["chain", "rounds", "star"], choices=["chain", "rounds", "star"]
    )
    parser.add_argument("--keep", action="store_true", help="leave the nodes running afterwards")
    args = parser.parse_args()
    nodes = [f"imgbench{i}" for i in range(max(args.hosts))]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(nodes))
            run("ansible-playbook", "molecule/resources/create.yml", "-e", nodes_arg(nodes))
            run("ansible-playbook", str(playbook(tmpdir / "docker.yml", "docker")),
                "-i", str(write_inventory(tmpdir / "all.json", nodes)))  # fmt: skip
            limit_links(nodes, args.rate)
            image_yml = playbook(tmpdir / "image.yml", "image")
            plans = with_rounds_first(args.plans)
            for n in args.hosts:
                for plan in plans:
                    remove_image(nodes)
                    inventory = write_inventory(tmpdir / f"{n}.json", nodes[:n], image_fanout=plan)
                    rows.append({"hosts": n, "plan": plan, **relay_run(inventory, image_yml, RELAY_TASKS)})
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        unlimit_controller()
        if not args.keep:
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(nodes))

    size = run("docker", "image", "inspect", "--format", "{{.Size}}", IMAGE, capture=True).strip()
    print(f"\n{IMAGE} ({int(size) / 1e9:.2f} GB) on links limited to {args.rate} (hosts and controller)")
    print_table(rows)
    print(f" wire bytes per transfer: {rows[0]['wire_mb']:.0f} MB (zstd -1)" if rows else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
