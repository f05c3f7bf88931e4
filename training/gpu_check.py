"""Run the trainer with NCCL on every GPU of this machine and check that CUDA did the work.

    python gpu_check.py            (from training/, or `make gpu-check` from the repository)

Exits non-zero when no GPU is visible, when the run fails, or when the trainer did not use CUDA
and NCCL; prints samples/s (tokens/s for the GPT workload) per epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    import torch

    gpus = torch.cuda.device_count()
    if gpus == 0:
        print("gpu_check: no CUDA device is visible", file=sys.stderr)
        return 1
    names = sorted({torch.cuda.get_device_name(i) for i in range(gpus)})
    print(
        f"gpu_check: {gpus} GPU(s): {', '.join(names)}; torch {torch.__version__}, CUDA {torch.version.cuda}"
    )
    with tempfile.TemporaryDirectory() as snapdir:
        cmd = [
            *(sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}"),
            *("training_code.py", "3", "3", "--model", "gpt", "--precision", "bf16"),
            *("--batch_size", "32", "--dataset_size", "4096", "--snapshot_dir", snapdir),
        ]
        run = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, env=dict(os.environ), check=False)
    records = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"event"')]
    if run.returncode != 0 or not records or records[-1]["event"] != "summary":
        print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
        print("gpu_check: the run failed", file=sys.stderr)
        return 1
    summary = records[-1]
    for r in records[:-1]:
        print(f"epoch {r['epoch']}: loss {r['loss']:.3f}, {r['samples_per_s']:,.0f} tokens/s")
    if (summary["device"], summary["backend"], summary["world_size"]) != ("cuda", "nccl", gpus):
        print(
            f"gpu_check: expected cuda/nccl on {gpus} GPUs, the trainer reported {summary}", file=sys.stderr
        )
        return 1
    print(f"gpu_check: ok: cuda, nccl, world size {gpus}, wall {summary['wall_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
