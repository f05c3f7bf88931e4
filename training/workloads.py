"""The models and synthetic data a run can train, each deterministic given a seed."""

from __future__ import annotations

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


def linear(dataset_size: int, seed: int) -> Workload:
    """The guide's job: one linear layer on random (20 -> 1) pairs; compares with the guide."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(dataset_size, 20, generator=gen)
    # A fixed linear target plus noise, so the loss has somewhere to fall to.
    w = torch.rand(20, 1, generator=gen)
    y = x @ w + 0.01 * torch.randn(dataset_size, 1, generator=gen)
    torch.manual_seed(seed)
    return Workload(nn.Linear(20, 1), TensorDataset(x, y), nn.MSELoss())


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


def gpt(dataset_size: int, seed: int, seq_len: int = 128, vocab: int = 512) -> Workload:
    """Synthetic token streams with a learnable rule (next = 5 * prev + 1 mod vocab, 10% noise)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.empty(dataset_size, seq_len + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(vocab, (dataset_size,), generator=gen)
    for i in range(1, seq_len + 1):
        rule = (5 * tokens[:, i - 1] + 1) % vocab
        noise = torch.randint(vocab, (dataset_size,), generator=gen)
        tokens[:, i] = torch.where(torch.rand(dataset_size, generator=gen) < 0.1, noise, rule)
    torch.manual_seed(seed)
    model = TinyGPT(vocab, seq_len, dim=256, layers=4, heads=4)
    return Workload(model, TensorDataset(tokens[:, :-1], tokens[:, 1:]), NextTokenLoss(), seq_len)


WORKLOADS = {"linear": linear, "gpt": gpt}
