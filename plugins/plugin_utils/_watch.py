"""What a waited job prints while it trains, from the ranks' records and the swarm's task states.

Pure: the records the manager read (module_utils/_progress.py) and ``training_job_info`` results
in, text lines out, on the controller (the training_job_wait action). Each rank prints its speed
in each epoch (``rank_speed``), from which the stragglers are named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import LOG_KEYS
from ansible_collections.torchswarm.ddp.plugins.plugin_utils import _rank_speed as rank_speed

# Keys of an epoch record that the progress line writes out itself; any other number shows as key=value.
KNOWN = {
    "event",
    "epoch",
    "epochs",
    "loss",
    "samples_per_s",
    "world_size",
    "elapsed_s",
    "steps",
    *LOG_KEYS,
}


def duration(seconds: float) -> str:
    """42 s, 3 min 05 s, 2 h 07 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _stalled_ranks(ranks: Iterable[Mapping[str, Any]]) -> str:
    """Where a stalled node's ranks were, from their stacks: "rank 1 is stuck at train.py:12 in
    wait_for_data; rank 0 waits in all_reduce" (the stuck one first: it holds the others up)."""
    parts = [f"rank {r.get('rank')} is stuck at {r['at']}" for r in ranks if r.get("at")]
    waiting: dict[str, list[str]] = {}
    for r in ranks:
        if r.get("waits_in"):
            waiting.setdefault(str(r["waits_in"]), []).append(str(r.get("rank")))
    for op, names in waiting.items():
        many = len(names) > 1
        parts.append(f"rank{'s' if many else ''} {', '.join(names)} wait{'' if many else 's'} in {op}")
    return "; ".join(parts)


@dataclass
class Watch:
    """What the wait has said so far; ``update`` returns the lines a new poll adds.

    ``epochs``: the job's epoch count when known (the bundled trainer's), for the time left;
    ``heartbeat``: seconds without a line after which a status line is printed anyway;
    ``stragglers``: which ranks are named slow (rank_speed.Stragglers), fed each epoch once every
    rank has printed its speed in it.
    """

    epochs: int | None = None
    heartbeat: float = 60.0
    stragglers: rank_speed.Stragglers = field(default_factory=rank_speed.Stragglers)
    speeds: dict[int, dict[int, Mapping[str, Any]]] = field(default_factory=dict)  # epoch -> rank -> record
    # Records already in the logs when the wait starts (a re-run, a long job): the newest only.
    backlog: int = 20
    state: str = ""
    lost: frozenset[str] = frozenset()
    last_said: float = 0.0
    run_start: tuple[int, float] | None = None  # (epoch, elapsed_s) of the current run's first record
    last_epoch: Mapping[str, Any] | None = None
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    host_checks: dict[tuple[str, str], str] = field(default_factory=dict)  # (service, event) -> last line
    lines: list[str] = field(default_factory=list)

    def update(self, info: Mapping[str, Any], records: Iterable[Mapping[str, Any]], now: float) -> list[str]:
        first = not self.state
        said = self._states(info)
        records = list(records)
        shown = [r for r in records if r.get("event") != rank_speed.EVENT]  # speeds print no line
        if first and len(shown) > self.backlog:
            said.append(f"({len(shown) - self.backlog} earlier records not shown; the results keep them)")
            hidden = {id(r) for r in shown[: -self.backlog]}
            records = [r for r in records if id(r) not in hidden]
        for record in records:
            key = (record.get("time", ""), record.get("service", ""), json.dumps(record, sort_keys=True))
            if key in self.seen:
                continue  # a log read overlaps the last one at its boundary
            self.seen.add(key)
            said += self._record(record)
        if not said and now - self.last_said >= self.heartbeat and self.state in ("running", "recovering"):
            said.append(self._still(info))
        if said:
            self.last_said = now
        self.lines += said
        return said

    def _states(self, info: Mapping[str, Any]) -> list[str]:
        said = []
        rows = info.get("services", [])
        lost = frozenset(info.get("lost", []))
        by_service = {r["service"]: r for r in rows}
        for name in sorted(lost - self.lost):
            row = by_service.get(name, {})  # its task may be a replacement placed nowhere
            said.append(f"host {row.get('host') or row.get('node') or name} lost ({name}: its node is down)")
        for name in sorted(self.lost - lost):
            said.append(f"host of {name} is back")
        state = info.get("state", "")
        if state != self.state and state not in ("complete", "failed", "absent"):
            up, total = info.get("training_hosts", 0), len(rows)
            # Training is what rank 0's records say (first_step, epoch), not a container that runs.
            why = {
                "running": f"{up} of {total} hosts up" if up else f"{total} ranks starting",
                "recovering": "ranks restarting" + (f", {len(lost)} host(s) lost" if lost else ""),
            }.get(state, "")
            said.append(f"job {state}" + (f": {why}" if why else ""))
        self.state, self.lost = state, lost
        return said

    def _record(self, record: Mapping[str, Any]) -> list[str]:
        event = record.get("event")
        if event == "epoch" and "epoch" in record:
            return [self._epoch(record)]
        if event == "summary":
            loss = record.get("final_loss")
            return [
                "training finished"
                + (f": {record['epochs']} epochs" if "epochs" in record else "")
                + (f", final loss {_number(loss)}" if loss is not None else "")
                + (f", {duration(record['wall_s'])}" if "wall_s" in record else "")
            ]
        if event in ("host_check", "nccl"):
            # Each rank's launcher checks its container at every start, and the network NCCL chose
            # in every round: said again only if changed.
            service = str(record.get("service", ""))
            line = record.get("line") or (
                f"NCCL uses {record.get('network')}"
                + (f" ({record['devices']})" if record.get("devices") else "")
            )
            if self.host_checks.get((service, event)) == line:
                return []
            self.host_checks[(service, event)] = line
            warnings = [f"warning: {service}: {w}" for w in record.get("warnings") or []]
            return [f"{service}: {line}", *warnings]
        if event == "stalled":
            where, silent = record.get("service", "?"), duration(record.get("silent_s", 0))
            ranks = _stalled_ranks(record.get("ranks") or [])
            return [
                f"job stalled: no step on {where} for {silent} "
                f"(stall {record.get('stalls', '?')} in a row){': ' + ranks if ranks else ''}; the round "
                "re-forms from the newest snapshot, every worker's stacks are in its log"
            ]
        if event == rank_speed.EVENT:
            return self._speed(record)
        if event == "first_step":
            return [f"training at world size {record.get('world_size', '?')}"]
        if event == "stopped":
            return [
                f"a rank stopped at epoch {record.get('epoch')} step {record.get('step')} after a snapshot"
            ]
        return []

    def _speed(self, record: Mapping[str, Any]) -> list[str]:
        """Each epoch goes to the stragglers once every rank of its world has printed its speed."""
        if not rank_speed.usable(record):
            return []
        epoch = int(record["epoch"])
        self.speeds.setdefault(epoch, {})[int(record["rank"])] = record
        if not rank_speed.complete(self.speeds[epoch]):
            return []
        # An earlier epoch still short of a rank never will be (a host lost during it).
        for earlier in [e for e in self.speeds if e < epoch]:
            del self.speeds[earlier]
        return self.stragglers.epoch(self.speeds.pop(epoch))

    def _epoch(self, record: Mapping[str, Any]) -> str:
        epoch, elapsed = int(record["epoch"]), float(record.get("elapsed_s", 0.0))
        last = self.last_epoch
        if self.run_start is None or last is None or elapsed < float(last.get("elapsed_s", 0.0)):
            self.run_start = (epoch, 0.0)  # the first record of a run (or of a restart)
        self.last_epoch = record
        total = record.get("epochs", self.epochs)
        parts = [f"epoch {epoch + 1}/{total}" if total else f"epoch {epoch + 1}"]
        if "loss" in record:
            parts.append(f"loss {_number(record['loss'])}")
        if "samples_per_s" in record:
            parts.append(f"{record['samples_per_s']:.0f} samples/s")
        parts += [
            f"{k} {_number(v)}"
            for k, v in record.items()
            if k not in KNOWN and isinstance(v, int | float) and not isinstance(v, bool)
        ]
        if "world_size" in record:
            parts.append(f"world size {record['world_size']}")
        if "elapsed_s" in record:
            parts.append(f"{duration(elapsed)} in")
            done = epoch + 1 - self.run_start[0]
            if total and done > 0 and epoch + 1 < int(total):
                parts.append(f"about {duration(elapsed / done * (int(total) - epoch - 1))} left")
        return ", ".join(parts)

    def _still(self, info: Mapping[str, Any]) -> str:
        rows = info.get("services", [])
        where = f"last epoch {int(self.last_epoch['epoch']) + 1}" if self.last_epoch else "no epoch yet"
        return f"still {self.state}: {info.get('training_hosts', 0)} of {len(rows)} hosts up, {where}"
