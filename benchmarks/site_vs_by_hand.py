"""site.yml against the hand-run guide, on the same kind of fresh node containers.

Prints the wall time of site.yml from bare nodes to a finished job, of its idempotent re-run,
and of benchmarks/by_hand.sh doing the guide's steps by hand, with the ratios the project
targets (converge <= 1.25 x by hand; re-run <= 15% of converge).

    make benchmark-site        (needs a Docker engine and the test images; about 6 minutes)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "torchswarm/trainer:latest"
NODES = ["bench0", "bench1", "bench2"]


def run(*cmd: str, quiet: bool = True) -> None:
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL if quiet else None)


def nodes_arg() -> str:
    return json.dumps({"nodes_platforms": [{"name": n} for n in NODES]})


def fresh_nodes() -> None:
    run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg())
    run("ansible-playbook", "molecule/resources/create.yml", "-e", nodes_arg())


def timed(*cmd: str) -> float:
    start = time.monotonic()
    run(*cmd)
    return time.monotonic() - start


def inventory(directory: Path) -> Path:
    path = directory / "inventory.yml"
    hosts = {n: {} for n in NODES[1:]}
    path.write_text(
        json.dumps(
            {
                "managers": {"hosts": {NODES[0]: {}}},
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the nodes running afterwards")
    args = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inv = inventory(Path(tmp))
            fresh_nodes()
            by_hand = timed("bash", "benchmarks/by_hand.sh", IMAGE, *NODES)
            fresh_nodes()
            converge = timed("ansible-playbook", "site.yml", "-i", str(inv))
            rerun = timed("ansible-playbook", "site.yml", "-i", str(inv))
    finally:
        if not args.keep:
            run("ansible-playbook", "molecule/resources/destroy.yml", "-e", nodes_arg())

    print(f"{len(NODES)} fresh nodes -> finished job ({IMAGE}, training_code.py 10 2 --batch_size 32)")
    print(f"  by hand (benchmarks/by_hand.sh): {by_hand:7.1f} s")
    ratio, share = converge / by_hand, rerun / converge
    print(f"  site.yml, converge:              {converge:7.1f} s  {ratio:.2f} x by hand (target <= 1.25)")
    print(f"  site.yml, idempotent re-run:     {rerun:7.1f} s  {share:.0%} of converge (target <= 15%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
