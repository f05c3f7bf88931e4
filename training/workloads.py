"""The models a run can train, on synthetic data (deterministic given a seed) or on a dataset of
files (``--data DIR``).

A dataset is a directory of ``*.pt`` files, each saved with ``torch.save``, read in name order
and joined: for ``linear`` a dict of ``x`` (N x 20 floats) and ``y`` (N x 1), for ``gpt`` a dict
of ``tokens`` (N x 129 token ids below 512: 128 inputs and the next token of each). No download:
``python3 workloads.py MODEL ITEMS DIR`` writes one of the synthetic datasets as such files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, TensorDataset


@dataclass
class Workload:
    model: nn.Module
    dataset: Dataset
    loss_fn: nn.Module
    samples_per_item: int = 1  # tokens per item for the GPT workload, for throughput figures


class DataError(ValueError):
    """A dataset directory that cannot be trained on; the message names the file."""


def read_dataset(directory: str, keys: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The ``*.pt`` files of ``directory`` in name order, each a dict with ``keys``, joined."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".pt"))
    except OSError as exc:
        raise DataError(f"--data {directory}: cannot list it ({exc.strerror})") from exc
    if not names:
        raise DataError(f"--data {directory}: no *.pt files in it")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    for name in names:
        path = os.path.join(directory, name)
        try:
            item = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a file it cannot read
            raise DataError(f"--data: {path} cannot be read as a torch.save file ({exc})") from exc
        if not isinstance(item, dict) or any(not isinstance(item.get(k), torch.Tensor) for k in keys):
            raise DataError(f"--data: {path} is not a dict of tensors {', '.join(keys)}")
        for k in keys:
            parts[k].append(item[k])
    try:
        return {k: torch.cat(v) for k, v in parts.items()}
    except RuntimeError as exc:
        raise DataError(f"--data {directory}: its files' tensors do not fit together ({exc})") from exc


LINEAR_IN = 20


def linear_data(dataset_size: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(dataset_size, LINEAR_IN, generator=gen)
    # A fixed linear target plus noise, so the loss has somewhere to fall to.
    w = torch.rand(LINEAR_IN, 1, generator=gen)
    return {"x": x, "y": x @ w + 0.01 * torch.randn(dataset_size, 1, generator=gen)}


def linear(dataset_size: int, seed: int, data: str | None = None) -> Workload:
    """The guide's job: one linear layer on (20 -> 1) pairs, random ones unless ``data``."""
    d = read_dataset(data, ("x", "y")) if data else linear_data(dataset_size, seed)
    x, y = d["x"].float(), d["y"].float()
    if x.dim() != 2 or x.shape[1] != LINEAR_IN or y.shape != (x.shape[0], 1):
        raise DataError(
            f"--data {data}: linear needs x of N x {LINEAR_IN} and y of N x 1, "
            f"not {list(x.shape)} and {list(y.shape)}"
        )
    torch.manual_seed(seed)
    return Workload(nn.Linear(LINEAR_IN, 1), TensorDataset(x, y), nn.MSELoss())


class TinyGPT(nn.Module):
    """A small decoder-only transformer: enough to keep a GPU busy in benchmarks."""

    def __init__(self, vocab: int, seq_len: int, dim: int, layers: int, heads: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(seq_len, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        mask = torch.triu(torch.full((seq_len, seq_len), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        h = self.tok(tokens) + self.pos(positions)
        h = self.blocks(h, mask=self.mask[: tokens.shape[1], : tokens.shape[1]], is_causal=True)
        return self.head(self.norm(h))


class NextTokenLoss(nn.Module):
    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


SEQ_LEN, VOCAB = 128, 512


def gpt_data(dataset_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Token streams with a learnable rule (next = 5 * prev + 1 mod vocab, 10% noise)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.empty(dataset_size, SEQ_LEN + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(VOCAB, (dataset_size,), generator=gen)
    for i in range(1, SEQ_LEN + 1):
        rule = (5 * tokens[:, i - 1] + 1) % VOCAB
        noise = torch.randint(VOCAB, (dataset_size,), generator=gen)
        tokens[:, i] = torch.where(torch.rand(dataset_size, generator=gen) < 0.1, noise, rule)
    return {"tokens": tokens}


def gpt(dataset_size: int, seed: int, data: str | None = None) -> Workload:
    """A small GPT on token streams: synthetic ones unless ``data``."""
    tokens = (read_dataset(data, ("tokens",)) if data else gpt_data(dataset_size, seed))["tokens"]
    if tokens.dim() != 2 or tokens.shape[1] != SEQ_LEN + 1 or tokens.dtype != torch.long:
        raise DataError(
            f"--data {data}: gpt needs tokens of N x {SEQ_LEN + 1} integers, "
            f"not {list(tokens.shape)} {tokens.dtype}"
        )
    if tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < VOCAB:
        raise DataError(f"--data {data}: gpt's token ids must be below {VOCAB}")
    torch.manual_seed(seed)
    model = TinyGPT(VOCAB, SEQ_LEN, dim=256, layers=4, heads=4)
    return Workload(model, TensorDataset(tokens[:, :-1], tokens[:, 1:]), NextTokenLoss(), SEQ_LEN)


WORKLOADS: dict[str, Callable[..., Workload]] = {"linear": linear, "gpt": gpt}
SYNTHETIC = {"linear": linear_data, "gpt": gpt_data}


def write_dataset(model: str, items: int, directory: str, files: int = 4, seed: int = 0) -> list[str]:
    """The synthetic data of ``model`` as a dataset directory of ``files`` files; their paths."""
    data = SYNTHETIC[model](items, seed)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index, rows in enumerate(torch.arange(items).tensor_split(files)):
        path = os.path.join(directory, f"part-{index:05d}.pt")
        torch.save({k: v[rows] for k, v in data.items()}, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write a synthetic dataset as files for --data")
    p.add_argument("model", choices=sorted(SYNTHETIC))
    p.add_argument("items", type=int)
    p.add_argument("directory")
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for path in write_dataset(args.model, args.items, args.directory, args.files, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
