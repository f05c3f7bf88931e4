"""How often a finished trainer run exits non-zero: many short 2-process torchrun runs at once.

    python benchmarks/trainer_exits.py [--runs 300] [--parallel 6]

A rank that aborts after its run has finished makes the swarm restart a finished task, so the
figure to watch is the count of non-zero exits (and of aborts among them). Overlapping runs on a
few cores widen the races a rare teardown bug needs. Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[1] / "training"


def one_run(_unused: int) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as snapdir:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        cmd += ["training_code.py", "1", "1", "--dataset_size", "256", "--snapshot_dir", snapdir]
        # faulthandler names the Python frame (if any) a SIGABRT hits.
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", PYTHONFAULTHANDLER="1")
        out = subprocess.run(cmd, cwd=TRAINING, env=env, capture_output=True, text=True, check=False)
        return out.returncode, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--parallel", type=int, default=6)
    args = parser.parse_args()

    start = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(one_run, range(args.runs)))
    failed = [err for rc, err in results if rc != 0]
    aborts = [err for err in failed if "Fatal Python error: Aborted" in err]

    print(f"{args.runs} runs of 2 ranks, {args.parallel} at a time, {time.monotonic() - start:.0f} s")
    print(f"  non-zero exits: {len(failed)}  (SIGABRT among them: {len(aborts)})")
    for err in failed[:3]:
        print("  ---", *err.splitlines()[:6], sep="\n  ")


if __name__ == "__main__":
    main()
