"""The baseline: a minimal plain-PyTorch DDP loop over the same model, data and world size.

No snapshots, no stop handling, no metrics file: what a user would write by hand. Rank 0 prints
one JSON line with samples/s per epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from workloads import WORKLOADS


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("epochs", type=int)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--model", default="gpt")
    p.add_argument("--dataset_size", type=int, default=2048)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast on CUDA")
    args = p.parse_args()

    cuda = torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    work = WORKLOADS[args.model](args.dataset_size, args.seed)
    model = DDP(work.model.to(device), device_ids=[local_rank] if cuda else None)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    sampler = DistributedSampler(work.dataset, seed=args.seed, drop_last=True)
    loader = DataLoader(work.dataset, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    world = dist.get_world_size()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        start, steps = time.monotonic(), 0
        for source, target in loader:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda and args.precision == "bf16"):
                loss = work.loss_fn(model(source.to(device)), target.to(device))
            loss.backward()
            opt.step()
            steps += 1
        loss.item()  # wait for the device, as the trainer's loss reduction does
        seconds = time.monotonic() - start
        if dist.get_rank() == 0:
            samples = steps * args.batch_size * world * work.samples_per_item
            print(
                json.dumps({"event": "epoch", "epoch": epoch, "samples_per_s": samples / seconds}), flush=True
            )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
