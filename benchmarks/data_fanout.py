"""The staged dataset (job_data_src) on limited links: how long it takes to reach N hosts.

As benchmarks/image_fanout.py for the image: every host's uplink and the controller's are
limited with tc (a token bucket), and for N = 3, 6 and 12 fresh hosts the job role's data steps
run with each job_data_fanout plan: chain (each host passes the stream on as it arrives; ideal:
one link-time), rounds (every holder sends on; ceil(log2(N+1)) link-times) and star (the
controller sends to every host itself; N link-times, its uplink shared). It prints the time to
reach all hosts and the ratio to one link-time: the rounds plan's first transfer, the dataset
from the controller to one host over one limited link. Target: chain <= 1.5 link-times at 12.

    make benchmark-data        (needs a Docker engine and the node image; about 25 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Run as a script, this directory is on the path: the image benchmark's helpers.
from image_fanout import (
    limit_links,
    nodes_arg,
    print_table,
    relay_run,
    run,
    unlimit_controller,
    with_rounds_first,
)

RELAY_TASKS = (
    "Listen for the dataset, passing it on down the chain",
    # The send runs in the background; its wait returns the send's result (bytes, seconds).
    "Wait for the sender, showing the dataset's progress",
    "Read each host's result",
)


def write_inventory(path: Path, nodes: list[str], **variables) -> Path:
    groups = {"managers": {"hosts": {nodes[0]: {}}}, "workers": {"hosts": {n: {} for n in nodes[1:]}}}
    variables = {"ansible_connection": "community.docker.docker", **variables}
    path.write_text(json.dumps({"all": {"children": groups, "vars": variables}}))
    return path


def playbook(path: Path) -> Path:
    """The validate role (each host's address, the dataset's digest), then the job role's data steps."""
    path.write_text(
        "- hosts: all\n  gather_facts: false\n  roles: [torchswarm.ddp.validate]\n"
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.import_role: {name: torchswarm.ddp.job, tasks_from: data}\n"
    )
    return path


def make_dataset(root: Path, megabytes: int, files: int = 8) -> None:
    root.mkdir(parents=True)
    chunk = 1 << 20
    for i in range(files):
        with open(root / f"shard-{i:03d}.bin", "wb") as handle:
            for _unused in range(megabytes // files):
                handle.write(os.urandom(chunk))


def remove_data(nodes: list[str]) -> None:
    for name in nodes:
        run("docker", "exec", name, "rm", "-rf", "/var/lib/torchswarm/data")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--rate", default="200mbit", help="each host's and the controller's uplink (tc)")
    parser.add_argument("--size-mb", type=int, default=1024, help="the dataset's size")
    parser.add_argument(
        "--plans", nargs="+", default=["chain", "rounds", "star"], choices=["chain", "rounds", "star"]
    )
    parser.add_argument("--keep", action="store_true", help="leave the nodes running afterwards")
    args = parser.parse_args()
    nodes = [f"databench{i}" for i in range(max(args.hosts))]
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmpdir = Path(tmp)
            make_dataset(tmpdir / "dataset", args.size_mb)
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(nodes))
            run("ansible-playbook", "molecule/resources/create.yml", "-e", nodes_arg(nodes))
            limit_links(nodes, args.rate)
            play = playbook(tmpdir / "data.yml")
            plans = with_rounds_first(args.plans)
            for n in args.hosts:
                for plan in plans:
                    remove_data(nodes)
                    inventory = write_inventory(
                        tmpdir / f"{n}.json",
                        nodes[:n],
                        job_data_src=str(tmpdir / "dataset"),
                        job_data_fanout=plan,
                    )
                    rows.append({"hosts": n, "plan": plan, **relay_run(inventory, play, RELAY_TASKS)})
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        unlimit_controller()
        if not args.keep:
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(nodes))

    print(f"\na {args.size_mb} MB dataset on links limited to {args.rate} (hosts and controller)")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
