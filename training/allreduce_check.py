"""A short all-reduce between every rank, with the bus bandwidth per message size: the
preflight's proof that the job's network carries collectives (NCCL on GPUs, Gloo on CPUs).

    torchrun --nnodes=N ... allreduce_check.py [--sizes 4K,1M,16M] [--iters 5] [--subnet CIDR]

Bus bandwidth is nccl-tests' figure: bytes / time * 2(n-1)/n, comparable across world sizes.
Each result is checked (every rank contributes its rank + 1), so a wrong sum fails the check.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist

from torchswarm import netif
from torchswarm.worker import finish
from training_code import setup_distributed

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """``4K``, ``1M``, ``1G`` or a byte count."""
    text = text.strip().upper().removesuffix("B")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit() or int(number) * _UNITS[unit] < 4:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size of at least 4 bytes such as 4K or 16M")
    return int(number) * _UNITS[unit]


def bus_bandwidth(nbytes: int, seconds: float, world_size: int) -> float:
    """Bytes per second on the bus for one all-reduce of ``nbytes`` (nccl-tests' busbw)."""
    if world_size < 2 or seconds <= 0:
        return 0.0
    return nbytes / seconds * 2 * (world_size - 1) / world_size


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="all-reduce between every rank, with bus bandwidth")
    p.add_argument("--sizes", type=lambda s: [parse_size(x) for x in s.split(",")], default="4K,1M,16M")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--subnet", default=os.environ.get("TORCHSWARM_SUBNET"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    netif.configure_socket_ifname(args.subnet)
    d = setup_distributed()
    try:
        if d.rank == 0:
            print(f"allreduce: world size {d.world_size}, {d.backend} on {d.device.type}", flush=True)
        for nbytes in args.sizes:
            data = torch.empty(nbytes // 4, dtype=torch.float32, device=d.device)
            data.fill_(d.rank + 1)
            dist.all_reduce(data)  # warm-up, and the correctness check
            expected = d.world_size * (d.world_size + 1) / 2
            if not torch.all(data == expected):
                print(f"allreduce: rank {d.rank}: wrong sum for {nbytes} B", file=sys.stderr, flush=True)
                return 1
            dist.barrier()
            if d.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _unused in range(args.iters):
                dist.all_reduce(data)
            if d.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / args.iters
            if d.rank == 0:
                busbw = bus_bandwidth(nbytes, seconds, d.world_size) / 1e9
                print(
                    f"allreduce: {nbytes:>11} B  {seconds * 1e3:9.3f} ms  busbw {busbw:8.3f} GB/s", flush=True
                )
        if d.rank == 0:
            print("allreduce: ok", flush=True)
        return 0
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    finish(main())
