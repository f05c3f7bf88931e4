"""Who trains in each round of an elastic job, agreed through the job's rendezvous store.

The store is a TCPStore served by a small service of the stack (``torchswarm.store``), placed on
the managers, so it outlives any training host: the swarm starts it again elsewhere if its host
dies. Each node's launcher:

- beats: adds 1 to ``hb/NODE`` every second, from a thread of its own;
- joins the current round: registers as the round's next member; the round closes once it has
  ``max_nodes`` members, or ``min_nodes`` and no newcomer for ``last_call`` seconds when a
  member has trained before (the job re-forms; its first round waits for every node, up to
  ``first_call`` seconds). A node that registers after the close waits for the next round;
- runs torchrun in static mode for the round's members (node rank = place in the round, ordered
  by the inventory's node rank, master = the first member), so every round is a fresh torchrun
  with a fresh store of its own (torchrun's in-place restarts reuse stale keys on torch 2.13);
- watches while torchrun runs: a member whose beat stopped for ``peer_timeout`` seconds (its
  host is gone: no RST, its peers would wait in a collective forever), a newcomer (a host back,
  or a rank restarted by the swarm), or a round ended by another node ends the round, and
  everyone joins the next one, resuming from the newest snapshot.

Keys live under the deployment generation, so a redeploy starts from nothing. Beats are counted,
not timestamped: no host's clock is trusted, each watcher times a peer's silence on its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

PORT_OFFSETS = 100


class Store(Protocol):
    """The subset of torch.distributed.Store used here (a TCPStore client)."""

    def add(self, key: str, amount: int) -> int: ...
    def set(self, key: str, value: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def check(self, keys: list[str]) -> bool: ...
    def compare_set(self, key: str, expected: str, desired: str) -> bytes: ...


@dataclass(frozen=True, order=True)
class Member:
    """A node of the job: ``order`` (its inventory node rank) first, so rounds are ordered."""

    order: int
    node: str  # the service name: unique and stable for a host
    addr: str  # where the others reach it (the master address when it is first)

    def text(self) -> str:
        return f"{self.order} {self.node} {self.addr}"

    @classmethod
    def parse(cls, text: str) -> Member:
        order, node, addr = text.split(" ", 2)
        return cls(int(order), node, addr)


@dataclass(frozen=True)
class Round:
    number: int
    members: tuple[Member, ...]
    me: Member
    # Added to the master port: a round's master never meets a listener left by an earlier
    # round on its host (a hung process, a round number repeated by a restarted store).
    port_offset: int = 0

    @property
    def node_rank(self) -> int:
        return self.members.index(self.me)

    @property
    def master(self) -> Member:
        return self.members[0]

    def names(self) -> str:
        return ", ".join(m.node for m in self.members)


@dataclass(frozen=True)
class Settings:
    min_nodes: int
    max_nodes: int
    last_call: float = 10.0  # seconds a round with min_nodes waits for more
    # A job's first round waits for every node (a slow image load is no lost host) unless one
    # never comes: after this many seconds it starts with min_nodes.
    first_call: float = 300.0
    peer_timeout: float = 30.0  # seconds of silence after which a member is gone
    poll: float = 0.5


class Ended(Exception):
    """The round ended (or never started): join the next one."""


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


class Rendezvous:
    def __init__(
        self,
        store: Store,
        generation: str,
        me: Member,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.prefix = f"torchswarm/{generation}"
        self.me = me
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self._beats: dict[str, tuple[int, float]] = {}  # node -> (count, when it last changed)
        # Whether this node has trained in this generation before (the launcher keeps a marker
        # in the snapshot volume): then rounds are re-formed after last_call, not first_call.
        self.trained = False

    def key(self, *parts: object) -> str:
        return "/".join([self.prefix, *map(str, parts)])

    # Completion: set once training finished; launchers that start later exit at once.
    def finished(self) -> bool:
        return self.store.check([self.key("finished")])

    def finish(self) -> None:
        self.store.set(self.key("finished"), self.me.node)

    def beat(self) -> None:
        self.store.add(self.key("hb", self.me.node), 1)

    def current(self) -> int:
        return int(_text(self.store.compare_set(self.key("round"), "", "0")))

    def end(self, number: int, reason: str, lost: bool) -> None:
        """End round ``number`` for everyone (a no-op when it has already ended); the first
        reason stays, so the others know whether to kill their part of it at once."""
        self.store.compare_set(self.key("r", number, "end"), "", f"{int(lost)} {self.me.node}: {reason}")
        self.store.compare_set(self.key("round"), str(number), str(number + 1))

    def why_ended(self, number: int) -> tuple[str, bool]:
        key = self.key("r", number, "end")
        if not self.store.check([key]):
            return f"round {number} was ended by another node", False
        lost, _unused, reason = _text(self.store.get(key)).partition(" ")
        return f"round {number} was ended by {reason}", lost == "1"

    def join(self) -> Round:
        """Register in the current round and wait until it closes with this node in it."""
        while True:
            number = self.current()
            try:
                return self._join(number)
            except Ended:
                continue

    def _join(self, number: int) -> Round:
        index = self.store.add(self.key("r", number, "n"), 1)
        self.store.set(self.key("r", number, "m", index), self.me.text())
        if self.trained:
            self.store.set(self.key("r", number, "resuming"), self.me.node)
        count, changed = index, self.clock()
        began = changed
        while True:
            if self.current() != number:
                raise Ended
            closed = self._closed_text(number)
            if closed is None:
                now = self.store.add(self.key("r", number, "n"), 0)
                if now != count:
                    count, changed = now, self.clock()
                quiet = self.clock() - changed >= self.settings.last_call
                waited = self.clock() - began >= self.settings.first_call
                resuming = waited or self.store.check([self.key("r", number, "resuming")])
                enough = count >= self.settings.min_nodes and quiet and resuming
                if count >= self.settings.max_nodes or enough:
                    offset = random.randrange(PORT_OFFSETS)
                    self.store.compare_set(self.key("r", number, "closed"), "", f"{count} {offset}")
                    continue
            elif index <= int(closed.split()[0]):
                return self._round(number, closed)
            else:
                self.wait_for_next(number)
                raise Ended
            self.sleep(self.settings.poll)

    def _closed_text(self, number: int) -> str | None:
        """ "MEMBERS PORT_OFFSET" once the round has closed, None while it is open."""
        key = self.key("r", number, "closed")
        return _text(self.store.get(key)) if self.store.check([key]) else None

    def _round(self, number: int, closed: str) -> Round:
        """The round as it closed ("MEMBERS PORT_OFFSET")."""
        count, offset = map(int, closed.split())
        keys = [self.key("r", number, "m", i) for i in range(1, count + 1)]
        while not self.store.check(keys):  # registered, the entry not written yet
            self.sleep(0.05)
        by_node = {}
        for key in keys:
            member = Member.parse(_text(self.store.get(key)))
            by_node[member.node] = member  # the newest entry of a node that registered twice
        members = tuple(sorted(by_node.values()))
        self._beats = {}
        return Round(number, members, by_node[self.me.node], offset)

    def wait_for_next(self, number: int) -> None:
        """A latecomer: the round's members see it and end the round."""
        while self.current() == number:
            self.sleep(self.settings.poll)

    def check(self, current: Round) -> tuple[str, bool] | None:
        """While the round trains: why it must end and whether a member is lost (its peers may
        be stuck in a collective with it, so the round is killed, not stopped), or None."""
        number = self.current()
        if number != current.number:
            return self.why_ended(current.number)
        joined = self.store.add(self.key("r", number, "n"), 0)
        if joined > self._closed_count(number):
            entry = self.key("r", number, "m", joined)
            known = self.store.check([entry])
            newcomer = Member.parse(_text(self.store.get(entry))).node if known else "a node"
            return f"{newcomer} is joining", False
        now = self.clock()
        for member in current.members:
            if member == current.me:
                continue
            count = self.store.add(self.key("hb", member.node), 0)
            last, since = self._beats.get(member.node, (None, now))
            if count != last:
                self._beats[member.node] = (count, now)
            elif now - since >= self.settings.peer_timeout:
                return f"{member.node} is gone (silent for {now - since:.0f} s)", True
        return None

    def _closed_count(self, number: int) -> int:
        closed = self._closed_text(number)
        return int(closed.split()[0]) if closed is not None else 0
