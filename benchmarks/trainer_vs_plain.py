"""Benchmark: training_code.py against a plain DDP loop, same model, data and world size, one run.

    python benchmarks/trainer_vs_plain.py [--nproc 2] [--epochs 4] [--dataset_size 512]

Prints samples/s of each (epoch 0 left out as warm-up) and their ratio; target: at least 0.97.
On a GPU it also prints model FLOPs utilisation against the GPU's bf16 peak (TORCHSWARM_PEAK_TFLOPS
overrides the table). Figures only: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Dense bf16 peak TFLOP/s per GPU, from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}


def torchrun(nproc: int, script: Path, args: list[str], cwd: Path) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run(
        [*cmd, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        sys.exit(f"{script.name} failed:\n{out.stdout}\n{out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"event"')]


def steady_rate(records: list[dict]) -> float:
    rates = [r["samples_per_s"] for r in records if r["event"] == "epoch"][1:]
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nproc", type=int, default=None, help="default: GPUs, or 2 on CPU")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--dataset_size", type=int, default=512)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--model", default="gpt")
    args = p.parse_args()

    import torch

    cuda = torch.cuda.is_available()
    nproc = args.nproc or (torch.cuda.device_count() if cuda else 2)
    common = [
        "--batch_size",
        str(args.batch_size),
        "--model",
        args.model,
        "--dataset_size",
        str(args.dataset_size),
    ]
    if cuda:
        common += ["--precision", "bf16"]  # both loops, so that the ratio compares like with like
    with tempfile.TemporaryDirectory() as snapdir:
        ours = torchrun(
            nproc,
            ROOT / "training" / "training_code.py",
            [str(args.epochs), str(args.epochs), *common, "--snapshot_dir", snapdir],
            ROOT / "training",
        )
    plain = torchrun(nproc, ROOT / "benchmarks" / "plain_ddp.py", [str(args.epochs), *common], ROOT)
    ours_rate, plain_rate = steady_rate(ours), steady_rate(plain)
    unit = "tokens/s" if args.model == "gpt" else "samples/s"
    where = f"cuda x{nproc}" if cuda else f"cpu, {nproc} processes"
    print(f"device: {where}, model {args.model}")
    print(f"training_code.py: {ours_rate:,.0f} {unit}")
    print(f"plain DDP loop:   {plain_rate:,.0f} {unit}")
    print(f"ratio:            {ours_rate / plain_rate:.3f}  (target >= 0.97)")
    if cuda and args.model == "gpt":
        sys.path.insert(0, str(ROOT / "training"))
        from workloads import gpt

        params = sum(p.numel() for p in gpt(1, 0).model.parameters())
        name = torch.cuda.get_device_name()
        peak = float(os.environ.get("TORCHSWARM_PEAK_TFLOPS", 0)) or next(
            (v for k, v in BF16_PEAK_TFLOPS.items() if k in name), 0.0
        )
        achieved = 6 * params * ours_rate / 1e12  # 6 FLOPs per parameter per token, forward+backward
        if peak:
            print(
                f"MFU:              {achieved / (peak * nproc):.1%} "
                f"of {peak:.0f} TFLOP/s bf16 per GPU ({name})"
            )
        else:
            print(
                f"achieved:         {achieved:.1f} TFLOP/s ({name}: peak unknown, set TORCHSWARM_PEAK_TFLOPS)"
            )


if __name__ == "__main__":
    main()
