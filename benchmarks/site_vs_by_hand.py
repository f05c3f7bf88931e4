"""site.yml against the hand-run guide, on the same kind of fresh node containers.

For each cluster size (3, 6 and 12 hosts by default) prints the wall time of site.yml from bare
nodes to a finished job, of its idempotent re-run, and of benchmarks/by_hand.sh doing the guide's
steps by hand, with the targets (converge <= 1.15 x by hand; an idle re-run <= 10 s on 3 hosts and
<= 20 s on 12), and how converge minus by hand grows per added host (target: under 5 s).
Both sides swing by tens of seconds from run to run on a small machine: --repeat N measures each
size N times (by hand and converge in turn) and prints every pair and the medians.

    make benchmark-site        (needs a Docker engine and the test images; about 40 minutes)
    BENCH_HOSTS=3 BENCH_REPEAT=3 make benchmark-site
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "torchswarm/trainer:latest"


def run(*cmd: str, quiet: bool = True) -> None:
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL if quiet else None)


def nodes_arg(nodes: list[str]) -> str:
    return json.dumps({"nodes_platforms": [{"name": n} for n in nodes]})


def fresh_nodes(nodes: list[str]) -> None:
    run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(nodes))
    run("ansible-playbook", "molecule/resources/create.yml", "-e", nodes_arg(nodes))


def timed(*cmd: str) -> float:
    start = time.monotonic()
    run(*cmd)
    return time.monotonic() - start


def inventory(directory: Path, nodes: list[str]) -> Path:
    path = directory / "inventory.yml"
    hosts = {n: {} for n in nodes[1:]}
    path.write_text(
        json.dumps(
            {
                "managers": {"hosts": {nodes[0]: {}}},
                "workers": {"hosts": hosts},
                "all": {
                    "vars": {
                        "ansible_connection": "community.docker.docker",
                        "docker_package_source": "distribution",
                        "network_subnet": "10.42.0.0/24",
                        "image_name": IMAGE,
                    }
                },
            }
        )
    )
    return path


def measure(nodes: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        inv = inventory(Path(tmp), nodes)
        fresh_nodes(nodes)
        by_hand = timed("bash", "benchmarks/by_hand.sh", IMAGE, *nodes)
        fresh_nodes(nodes)
        converge = timed("ansible-playbook", "site.yml", "-i", str(inv))
        rerun = timed("ansible-playbook", "site.yml", "-i", str(inv))
    return {"hosts": len(nodes), "by_hand": by_hand, "converge": converge, "rerun": rerun}


def median_row(runs: list[dict]) -> dict:
    """One size's runs as one row: the median of each figure, and of the ratio of each pair."""
    row = {key: statistics.median(run[key] for run in runs) for key in ("by_hand", "converge", "rerun")}
    ratio = statistics.median(run["converge"] / run["by_hand"] for run in runs)
    return {"hosts": runs[0]["hosts"], "runs": len(runs), "ratio": ratio, **row}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[3, 6, 12])
    parser.add_argument("--repeat", type=int, default=1, help="measure each size this many times")
    parser.add_argument("--keep", action="store_true", help="leave the nodes running afterwards")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat (BENCH_REPEAT) must be 1 or more, not {args.repeat}")
    rows = []
    all_nodes = [f"bench{i}" for i in range(max(args.hosts))]
    try:
        for n in args.hosts:
            runs = []
            while len(runs) < args.repeat:
                runs.append(measure(all_nodes[:n]))
                print(json.dumps(runs[-1]), flush=True)
            rows.append(median_row(runs))
    finally:
        if not args.keep:
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg(all_nodes))

    print(f"fresh nodes -> finished job ({IMAGE}, training_code.py 10 2 --batch_size 32)")
    if args.repeat > 1:
        print(f" medians of {args.repeat} runs each (x by hand: the median of each run's ratio)")
    print(" hosts  by hand s  converge s  x by hand  re-run s  of converge  converge - by hand s")
    for row in rows:
        ratio, share = row["ratio"], row["rerun"] / row["converge"]
        print(
            f" {row['hosts']:5d}  {row['by_hand']:9.1f}  {row['converge']:10.1f}  {ratio:9.2f}"
            f"  {row['rerun']:8.1f}  {share:11.0%}  {row['converge'] - row['by_hand']:20.1f}"
        )
    print(" targets: converge <= 1.15 x by hand; idle re-run <= 10 s on 3 hosts, <= 20 s on 12")
    for before, after in itertools.pairwise(rows):
        grow = (after["converge"] - after["by_hand"]) - (before["converge"] - before["by_hand"])
        per_host = grow / (after["hosts"] - before["hosts"])
        span = f"{before['hosts']} -> {after['hosts']} hosts"
        print(f" {span}: converge - by hand grows {per_host:+.1f} s per added host (target < 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
