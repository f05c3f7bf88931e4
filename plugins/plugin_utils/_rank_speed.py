"""Each rank's speed, and which rank is the straggler, from the ranks' ``rank_speed`` records.

Pure: records in, rows and lines out. Every rank prints one record per epoch (torchswarm.report
or the bundled trainer, through the image's ``torchswarm.speed``):
``{"event": "rank_speed", "rank": 2, "host": "node3", "epoch": 4, "world_size": 3, "steps": 120,
"step_s": 0.21, "own_s": 0.19}``. ``step_s`` is the mean time from one step to the next, which in
DDP is the same on every rank (each waits for the slowest in the all-reduce); ``own_s``, when the
script marks it (``torchswarm.ready()`` before backward), is the rank's own part of a step: its
data, forward and loss, before it waits for the others. A straggler is a rank whose own time is
``ratio`` times the median rank's for ``epochs`` epochs in a row.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EVENT = "rank_speed"
# A rank's own time may exceed the median's by the ratio and still be noise when both are tiny
# next to the step (a fast rank's forward in a step that is mostly all-reduce): it must also be
# slower by this share of the median step time.
NOISE_SHARE = 0.1
TINY_S = 1e-6  # the records' resolution: a median own time of 0 divides as this


def measure(rows: Iterable[Mapping[str, Any]]) -> str:
    """What the rows compare: the ranks' own time when every rank gives it, else the step time."""
    rows = list(rows)
    return "own_s" if rows and all(isinstance(r.get("own_s"), int | float) for r in rows) else "step_s"


def median(rows: Iterable[Mapping[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)


def slow_ranks(rows: Iterable[Mapping[str, Any]], ratio: float) -> dict[int, float]:
    """The ranks of one epoch that are ``ratio`` times slower than the median rank: rank -> its
    time over the median's."""
    rows = list(rows)
    if len(rows) < 2:
        return {}
    key = measure(rows)
    middle, floor = median(rows, key), NOISE_SHARE * median(rows, "step_s")
    return {
        int(row["rank"]): float(row[key]) / max(middle, TINY_S)  # a finite ratio for summary.json
        for row in rows
        if float(row[key]) > ratio * middle and float(row[key]) - middle >= floor
    }


def usable(record: Mapping[str, Any]) -> bool:
    """Whether a record is a rank's speed in an epoch, with a step time (a rank that took one step
    in an epoch has none)."""
    return (
        record.get("event") == EVENT
        and isinstance(record.get("epoch"), int)
        and isinstance(record.get("rank"), int)
        and isinstance(record.get("step_s"), int | float)
    )


def by_epoch(records: Iterable[Mapping[str, Any]]) -> dict[int, dict[int, Mapping[str, Any]]]:
    """The usable rank_speed records as epoch -> rank -> record (a rank's later record of an epoch,
    one trained again after a restart, replaces its earlier one)."""
    epochs: dict[int, dict[int, Mapping[str, Any]]] = {}
    for record in filter(usable, records):
        epochs.setdefault(record["epoch"], {})[record["rank"]] = record
    return epochs


def complete(rows: Mapping[int, Mapping[str, Any]]) -> bool:
    """Whether every rank of the epoch's world has reported it."""
    sizes = {int(r.get("world_size", 0)) for r in rows.values()}
    return len(sizes) == 1 and len(rows) >= sizes.pop() > 0


def _named(row: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], times: float, epochs: int) -> str:
    rows = list(rows)
    key = measure(rows)
    what = "own time per step (before the all-reduce)" if key == "own_s" else "time per step"
    return (
        f"straggler: rank {row['rank']} on {row.get('host', '?')} takes {times:.1f}x the median "
        f"rank's {what}, {float(row[key]):.3g} s against {median(rows, key):.3g} s, for {epochs} epochs"
    )


@dataclass
class Stragglers:
    """Ranks slow for ``epochs`` epochs in a row, from the epochs fed in order: each named when it
    becomes one, again only after it kept up for an epoch."""

    ratio: float = 1.5
    epochs: int = 3
    streak: dict[int, int] = field(default_factory=dict)  # rank -> slow epochs in a row
    named: dict[int, dict[str, Any]] = field(default_factory=dict)  # rank -> what summary.json says

    def epoch(self, rows: Mapping[int, Mapping[str, Any]]) -> list[str]:
        """Feed one epoch's rows (rank -> record); the lines that name a rank a straggler."""
        slow = slow_ranks(rows.values(), self.ratio)
        was = self.streak
        self.streak = {rank: was.get(rank, 0) + 1 for rank in slow}
        said = []
        for rank, times in sorted(slow.items()):
            streak = self.streak[rank]
            if streak < self.epochs:
                continue
            if streak == self.epochs:
                said.append(_named(rows[rank], rows.values(), times, streak))
            known = self.named.get(rank, {})
            self.named[rank] = {
                "rank": rank,
                "host": rows[rank].get("host", ""),
                "times_median": round(max(times, known.get("times_median", 0.0)), 2),
                "epochs": max(streak, known.get("epochs", 0)),
            }
        for rank, named in self.named.items():
            named["slow_at_end"] = self.streak.get(rank, 0) >= self.epochs
        return said

    def run(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Feed a whole run's records (every complete epoch, in order); found()."""
        for _epoch, rows in sorted(by_epoch(records).items()):
            if complete(rows):
                self.epoch(rows)
        return self.found()

    def found(self) -> list[dict[str, Any]]:
        """Every rank named: rank, host, its worst time over the median's, its longest run of slow
        epochs, and whether it was slow still at the last epoch fed."""
        return [dict(self.named[rank]) for rank in sorted(self.named)]


def series(records: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each rank's time per step by epoch (1-based, as the plots count), as "rank R (host)" ->
    points: its own time where every rank of the epoch gives one, else its step time."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for epoch, rows in sorted(by_epoch(records).items()):
        key = measure(rows.values())
        for rank, row in sorted(rows.items()):
            if isinstance(row.get(key), int | float):
                lines.setdefault(f"rank {rank} ({row.get('host', '?')})", []).append(
                    (epoch + 1, float(row[key]))
                )
    return lines


def table(records: Iterable[Mapping[str, Any]], ratio: float = 1.5) -> list[str]:
    """The ranks' speed in their newest complete epoch as aligned text lines: a title, a header,
    a row per rank (a straggler's says so) and the median; [] when no epoch is complete yet."""
    done = [(epoch, rows) for epoch, rows in sorted(by_epoch(records).items()) if complete(rows)]
    if not done:
        return []
    epoch, rows = done[-1]
    key = measure(rows.values())
    slow = slow_ranks(rows.values(), ratio)

    def cells(label: str, host: str, step_s: float, own: float | None, note: str) -> tuple[str, ...]:
        return (
            label,
            host,
            f"{1 / step_s:.2f}" if step_s > 0 else "-",
            f"{step_s:.3g}",
            "-" if own is None else f"{own:.3g}",
            note,
        )

    header = ("RANK", "HOST", "STEPS/S", "STEP S", "OWN S", "")
    body = [
        cells(
            str(rank),
            str(row.get("host", "?")),
            float(row["step_s"]),
            float(row["own_s"]) if key == "own_s" else None,
            f"straggler: {slow[rank]:.1f}x the median" if rank in slow else "",
        )
        for rank, row in sorted(rows.items())
    ]
    own = median(rows.values(), "own_s") if key == "own_s" else None
    lines = [header, *body, cells("median", "", median(rows.values(), "step_s"), own, "")]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return [
        f"speed of each rank in epoch {epoch + 1} (seconds per step; OWN: before the all-reduce)",
        *("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines),
    ]
