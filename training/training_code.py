"""A torchrun DDP trainer that is a drop-in for the guide's training_code.py.

    torchrun --nproc_per_node=1 --nnodes=2 --node_rank=0 --master_addr=node0 --master_port=12355 \\
        training_code.py 10 2 --batch_size 32

Positional: total epochs and snapshot interval (epochs); --batch_size is per process. Runs on
CUDA with NCCL when GPUs are visible and on CPU with gloo otherwise. Every node keeps its own
copy of every snapshot (DDP replicas are identical), and at start all ranks agree on the newest
copy on any node and load it from there, so rank 0 may land on any host. SIGTERM saves a
snapshot at the next step and exits EXIT_STOPPED, which the swarm restarts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

import snapshot
import torchswarm
from torchswarm import EXIT_DO_NOT_RETRY, EXIT_STOPPED, netif
from torchswarm.atomic import write_atomically
from torchswarm.worker import finish
from workloads import WORKLOADS, DataError


class Refusal(Exception):
    """This run cannot train as asked, and would not on a restart either."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise Refusal(f"{self.prog}: {message}")


def refuse(reason: str) -> int:
    """Say why, where the launcher looks for it (TORCHSWARM_FATAL_FILE), and give its exit code."""
    print(f"torchswarm: cannot train: {reason}", file=sys.stderr, flush=True)
    path = os.environ.get("TORCHSWARM_FATAL_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(reason + "\n")
    return EXIT_DO_NOT_RETRY


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = Parser(description="torchswarm DDP trainer (the guide's command line, and more)")
    p.add_argument("total_epochs", type=int, help="epochs to train in all")
    p.add_argument("save_every", type=int, help="save a snapshot every this many epochs")
    p.add_argument("--batch_size", type=int, default=32, help="per process (default: 32)")
    p.add_argument("--model", choices=sorted(WORKLOADS), default="linear")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dataset_size", type=int, default=2048, help="items of synthetic data (without --data)")
    p.add_argument(
        "--data",
        default=os.environ.get("TORCHSWARM_DATA_DIR") or None,
        help="train on the dataset of *.pt files in this directory (see workloads.py; default "
        "TORCHSWARM_DATA_DIR) instead of synthetic data",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast on CUDA")
    p.add_argument(
        "--snapshot_dir",
        default=os.environ.get("TORCHSWARM_SNAPSHOT_DIR", "."),
        help="where the snapshots and metrics.jsonl live; mount a volume here",
    )
    p.add_argument(
        "--snapshot_keep",
        type=int,
        default=int(os.environ.get("TORCHSWARM_SNAPSHOT_KEEP", "2")),
        help="keep this many of the newest snapshots (default: 2, or TORCHSWARM_SNAPSHOT_KEEP)",
    )
    p.add_argument("--metrics_path", default=None, help="default: SNAPSHOT_DIR/metrics.jsonl")
    p.add_argument(
        "--output_dir",
        default=os.environ.get("TORCHSWARM_OUTPUT_DIR") or None,
        help="rank 0 writes the trained model here as model.pt (default TORCHSWARM_OUTPUT_DIR, which "
        "the collection brings back to the controller after the run)",
    )
    p.add_argument(
        "--subnet",
        default=os.environ.get("TORCHSWARM_SUBNET"),
        help="pick NCCL/GLOO_SOCKET_IFNAME from the interface in this subnet, unless they are set",
    )
    args = p.parse_args(argv)
    if min(args.total_epochs, args.save_every, args.batch_size, args.dataset_size, args.snapshot_keep) < 1:
        p.error(
            "total_epochs, save_every, --batch_size, --dataset_size and --snapshot_keep must be at least 1"
        )
    return args


@dataclass
class Dist:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str


def setup_distributed() -> Dist:
    """The one place that decides device and backend."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return Dist(dist.get_rank(), local_rank, dist.get_world_size(), device, backend)


class EpochOrder(DistributedSampler):
    """DistributedSampler's shuffled order (drop_last), whose epoch can begin past its first
    ``offset`` samples. Each epoch's order depends only on the seed and the epoch, and after S
    steps every rank has taken its share of the order's first S * batch * world samples: a round
    at another world size goes on from there, so no sample of the epoch is trained twice."""

    offset = 0

    def __iter__(self):
        if not self.offset:
            return super().__iter__()
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()[self.offset :]
        share = len(order) // self.num_replicas
        return iter(order[self.rank : share * self.num_replicas : self.num_replicas])

    def __len__(self) -> int:
        if not self.offset:
            return super().__len__()
        return max(len(self.dataset) - self.offset, 0) // self.num_replicas


class StopRequest:
    """Turns SIGTERM into a flag that all ranks agree on at a step boundary.

    The agreement is a collective, and on a GPU a wait for the step to finish: asked after every
    step, it added a collective to each step and let a GPU's queue run dry each step. So it is
    asked after each of the first CALIBRATE steps, which also agree on the
    slowest rank's step time, and then every so many steps, about AGREE_EVERY_S apart (at most
    MOST_STEPS), the same steps on every rank. A SIGTERM is then heard within about a second,
    well inside the stop grace period."""

    CALIBRATE = 8
    AGREE_EVERY_S = 1.0
    MOST_STEPS = 64

    def __init__(self) -> None:
        self.requested = False
        self.asked, self.every, self.first = 0, 1, 0.0
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def agreed(self, device: torch.device) -> bool:
        """Call after every step, on every rank: whether a rank was asked to stop, as all agree."""
        self.asked += 1
        if self.asked == 1:
            self.first = time.monotonic()
        if self.asked % self.every:
            return False
        step_s = (time.monotonic() - self.first) / (self.asked - 1) if self.asked == self.CALIBRATE else 0.0
        flag = torch.tensor([1.0 if self.requested else 0.0, step_s], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        stop, slowest = flag.tolist()
        if self.asked == self.CALIBRATE:
            self.every = stop_every(slowest, self.AGREE_EVERY_S, self.MOST_STEPS)
        return bool(stop)


def stop_every(step_s: float, apart_s: float, most: int) -> int:
    """Steps between two agreements on a stop, for steps of step_s seconds: about apart_s."""
    return max(1, min(most, int(apart_s / step_s) if step_s > 0 else most))


class Trainer:
    def __init__(self, args: argparse.Namespace, d: Dist) -> None:
        self.args, self.d = args, d
        try:
            work = WORKLOADS[args.model](args.dataset_size, args.seed, args.data)
        except DataError as exc:
            raise Refusal(str(exc)) from exc
        self.samples_per_item = work.samples_per_item
        self.loss_fn = work.loss_fn
        model = work.model.to(d.device)
        self.model = DDP(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=args.lr)
        self.sampler = EpochOrder(work.dataset, seed=args.seed, drop_last=True)
        self.loader = DataLoader(
            work.dataset, batch_size=args.batch_size, sampler=self.sampler, drop_last=True
        )
        if len(self.loader) == 0:
            share = len(self.sampler)
            raise Refusal(
                f"no training step per epoch: the dataset's {len(work.dataset)} items split over world "
                f"size {d.world_size} give each rank {share}, fewer than one batch (--batch_size "
                f"{args.batch_size}); lower the batch size, raise --dataset_size or use fewer processes"
            )
        if args.data and d.rank == 0:
            print(
                f"torchswarm: training on {len(work.dataset)} items read from {args.data}",
                file=sys.stderr,
                flush=True,
            )
        self.metrics_path = args.metrics_path or os.path.join(args.snapshot_dir, "metrics.jsonl")
        self.position = snapshot.Position()
        # Samples of position.epoch's order trained before this round, at another world size.
        self.offset = 0
        self.resumed_from: dict[str, int] | None = None
        self.history: list[dict[str, Any]] = []  # every record of the job, kept in each snapshot
        self.stop = StopRequest()
        self.autocast = d.device.type == "cuda" and args.precision == "bf16"

    # --- snapshots -------------------------------------------------------------------------
    def check_snapshot_dir(self) -> None:
        """Every rank tries to write where snapshots go, before the first step, and all agree:
        otherwise an unwritable volume shows only at the first snapshot, an epoch later, and
        again after every restart."""
        why = ""
        try:
            os.makedirs(self.args.snapshot_dir, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.args.snapshot_dir, prefix=".write-check-"):
                pass
        except OSError as exc:
            why = (
                f"rank {self.d.rank}: the snapshot directory {self.args.snapshot_dir} is not writable ({exc})"
            )
        failed = torch.tensor([self.d.rank + 1 if why else 0], device=self.d.device)
        dist.all_reduce(failed, op=dist.ReduceOp.MAX)
        if failed.item():
            raise Refusal(why or f"rank {int(failed.item()) - 1} cannot write its snapshot directory")

    def restore(self) -> None:
        """Each node reads its own copy; all ranks agree on the newest copy anywhere, and the
        lowest rank holding it broadcasts it, so every rank resumes at one place wherever rank 0
        runs now. Every node then rewrites its metrics file from the snapshot's history."""
        found: dict[str, Any] = {}
        state = None
        if self.d.local_rank == 0:
            try:
                state, skipped = snapshot.load_newest(self.args.snapshot_dir, self.args.model)
                found = {"at": snapshot.position_of(state)} if state else {}
                for why in skipped:
                    print(
                        f"torchswarm: rank {self.d.rank} on {socket.gethostname()}: {why}; "
                        "resuming from the one before it",
                        file=sys.stderr,
                        flush=True,
                    )
            except snapshot.SnapshotError as exc:
                found = {"error": f"rank {self.d.rank} on {socket.gethostname()}: {exc}"}
        every: list[Any] = [None] * self.d.world_size
        dist.all_gather_object(every, found)
        errors = [f["error"] for f in every if "error" in f]
        if errors:
            raise snapshot.SnapshotError("; ".join(errors))
        held = [(f["at"], rank) for rank, f in enumerate(every) if "at" in f]
        if held:
            newest = max(at for at, _unused in held)
            source = min(rank for at, rank in held if at == newest)
            payload = [state if self.d.rank == source else None]
            device = self.d.device if self.d.backend == "nccl" else None
            dist.broadcast_object_list(payload, src=source, device=device)
            state = payload[0]
        self.history = list(state.get("history", [])) if state else []
        self.write_metrics_file()
        if state is None:
            return
        try:
            self.model.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise snapshot.SnapshotError(
                f"the newest snapshot in {self.args.snapshot_dir} does not fit this model ({exc}); "
                "use another snapshot directory"
            ) from exc
        torch.set_rng_state(state["rng"])
        step, self.offset = state["step"], state.get("offset", 0)
        split = (state.get("world_size", self.d.world_size), state.get("batch_size", self.args.batch_size))
        if step and split != (self.d.world_size, self.args.batch_size):
            # Steps of another split: go on past the samples they took (EpochOrder).
            self.offset, step = self.offset + step * split[0] * split[1], 0
        self.position = snapshot.Position(state["epoch"], step)
        self.resumed_from = {"epoch": state["epoch"], "step": step}
        before = ""
        if self.offset:
            self.resumed_from["trained_before"] = self.offset
            before = f", past the {self.offset} samples of it trained at another world size"
        print(
            f"torchswarm: rank {self.d.rank} resumes at epoch {state['epoch']} step {step} "
            f"(snapshot of rank {source}){before}",
            file=sys.stderr,
            flush=True,
        )

    def write_metrics_file(self) -> None:
        """Every node's metrics file holds exactly the history of the snapshot it resumes from:
        epochs trained after that snapshot are dropped (they run again, and count once), and a
        node that never held rank 0 gets the job's metrics all the same."""
        if self.d.local_rank != 0:
            return
        text = "".join(json.dumps(record) + "\n" for record in self.history)
        write_atomically(self.metrics_path, lambda handle: handle.write(text.encode()), prefix=".metrics-")

    def save(self, epoch: int, step: int) -> None:
        """One writer per node (local rank 0), each into its own node's snapshot directory. The
        position is kept as samples of the epoch's order too, which any world size reads."""
        offset = self.offset if epoch == self.position.epoch else 0
        if self.d.local_rank == 0:
            snapshot.save(
                self.args.snapshot_dir,
                {
                    "format": snapshot.FORMAT,
                    "workload": self.args.model,
                    "epoch": epoch,
                    "step": step,
                    "world_size": self.d.world_size,
                    "batch_size": self.args.batch_size,
                    "offset": offset,
                    "samples": offset + step * self.d.world_size * self.args.batch_size,
                    "model": self.model.module.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "rng": torch.get_rng_state(),
                    "history": self.history,
                },
                keep=self.args.snapshot_keep,
            )
        dist.barrier()

    # --- training --------------------------------------------------------------------------
    def step(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.d.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss_fn(self.model(source), target)
        torchswarm.ready()  # this rank's own part done; backward's all-reduce waits for the slowest
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def emit(self, record: dict[str, Any], save_at: tuple[int, int] | None = None) -> None:
        """Add a record to the job's history, snapshot (with the history) when asked, then write
        the line on every node: a line in the file means its epoch is safely on disk."""
        self.history.append(record)
        if save_at is not None:
            self.save(*save_at)
        line = json.dumps(record)
        if self.d.rank == 0:
            torchswarm.write_line(line)
        if self.d.local_rank == 0:
            with open(self.metrics_path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def train(self) -> int:
        """Returns the process's exit code."""
        args, d = self.args, self.d
        self.check_snapshot_dir()
        self.restore()
        started, trained = time.monotonic(), 0
        last_loss = float("nan")
        for epoch in range(self.position.epoch, args.total_epochs):
            self.sampler.set_epoch(epoch)
            self.sampler.offset = self.offset if epoch == self.position.epoch else 0
            skip = self.position.step if epoch == self.position.epoch else 0
            total, steps, epoch_start = torch.zeros(1, device=d.device), 0, time.monotonic()
            for index, (source, target) in enumerate(self.loader):
                if index < skip:
                    continue  # trained before the restart
                total += self.step(source.to(d.device), target.to(d.device))
                steps, trained = steps + 1, trained + 1
                torchswarm.step()  # the launcher's sign that this run got past its start
                if trained == 1 and d.rank == 0:
                    # Wall-clock time, for the time from a lost host to training again (the
                    # epoch resumed in may have had no step left at this world size).
                    print(
                        f"torchswarm: first step trained at {time.time():.3f} (world size {d.world_size})",
                        file=sys.stderr,
                        flush=True,
                    )
                # Not at an epoch's last step: that epoch ends with its record and loss first.
                if index + 1 < len(self.loader) and self.stop.agreed(d.device):
                    self.emit(
                        {"event": "stopped", "epoch": epoch, "step": index + 1, "world_size": d.world_size},
                        save_at=(epoch, index + 1),
                    )
                    print(
                        f"torchswarm: rank {d.rank} stopped at epoch {epoch} step {index + 1} after a "
                        f"snapshot; exit {EXIT_STOPPED}, for the swarm to restart it",
                        file=sys.stderr,
                        flush=True,
                    )
                    return EXIT_STOPPED
            torchswarm.speed(epoch)  # on every rank: its step time, for the stragglers
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            seconds = time.monotonic() - epoch_start
            # No step at all: the epoch's rest was less than a batch per rank after a resize.
            last_loss = total.item() / (steps * d.world_size) if steps else last_loss
            samples = steps * args.batch_size * d.world_size * self.samples_per_item
            last = epoch + 1 == args.total_epochs
            due = (epoch + 1) % args.save_every == 0 and not last
            self.emit(
                {
                    "event": "epoch",
                    "epoch": epoch,
                    "epochs": args.total_epochs,
                    "steps": steps,
                    "loss": last_loss,
                    "samples_per_s": samples / seconds if seconds > 0 else 0.0,
                    "world_size": d.world_size,
                    "elapsed_s": time.monotonic() - started,
                },
                save_at=(epoch + 1, 0) if due else None,
            )
        # The last snapshot holds the summary too, so a run asked for more epochs later keeps it.
        self.emit(
            {
                "event": "summary",
                "epochs": args.total_epochs,
                "final_loss": last_loss,
                "world_size": d.world_size,
                "device": d.device.type,
                "backend": d.backend,
                "resumed_from": self.resumed_from,
                "wall_s": time.monotonic() - started,
            },
            save_at=(args.total_epochs, 0),
        )
        self.write_model()
        return 0

    def write_model(self) -> None:
        """The trained model's weights, by rank 0, for the controller to take home."""
        if self.d.rank != 0 or not self.args.output_dir:
            return
        path = os.path.join(self.args.output_dir, "model.pt")
        state = self.model.module.state_dict()
        write_atomically(path, lambda handle: torch.save(state, handle), prefix=".model-")
        print(f"torchswarm: rank 0 wrote the model to {path}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except Refusal as exc:
        return refuse(str(exc))
    chosen = netif.configure_socket_ifname(args.subnet)
    if chosen:
        print(f"torchswarm: using interface {chosen} for {args.subnet}", file=sys.stderr, flush=True)
    d = setup_distributed()
    try:
        return Trainer(args, d).train()
    except Refusal as exc:
        return refuse(str(exc))
    except snapshot.SnapshotError as exc:
        print(f"torchswarm: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    finish(main())
