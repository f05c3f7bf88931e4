"""What the launcher needs for an elastic job: settings from the environment, a store client
that outlives the store's restarts, a heartbeat thread, and torchrun's command for a round.

The stack sets, on every training service:
  TORCHSWARM_RENDEZVOUS    host:port of the rendezvous service (torchswarm.store)
  TORCHSWARM_NODE          this node's service name, TORCHSWARM_NODE_ADDR where peers reach it
  TORCHSWARM_NODE_ORDER    its inventory node rank (rounds keep that order)
  TORCHSWARM_MIN_NODES, TORCHSWARM_MAX_NODES, TORCHSWARM_PEER_TIMEOUT, TORCHSWARM_LAST_CALL
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Mapping

from torchswarm import say
from torchswarm.rendezvous import Member, Rendezvous, Round, Settings

# torchrun options a round decides; anything else in the stack's command stays.
ROUND_OPTIONS = (
    "--nnodes",
    "--node_rank",
    "--node-rank",
    "--master_addr",
    "--master-addr",
    "--master_port",
    "--master-port",
)
DEFAULT_MASTER_PORT = 29500  # torchrun's
STORE_TIMEOUT_S = 5.0


def enabled(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("TORCHSWARM_RENDEZVOUS"))


def settings(environ: Mapping[str, str]) -> Settings:
    max_nodes = int(environ["TORCHSWARM_MAX_NODES"])
    return Settings(
        min_nodes=int(environ.get("TORCHSWARM_MIN_NODES", max_nodes)),
        max_nodes=max_nodes,
        last_call=float(environ.get("TORCHSWARM_LAST_CALL", "10")),
        peer_timeout=float(environ.get("TORCHSWARM_PEER_TIMEOUT", "30")),
    )


def member(environ: Mapping[str, str]) -> Member:
    node = environ["TORCHSWARM_NODE"]
    order = int(environ.get("TORCHSWARM_NODE_ORDER", "0"))
    return Member(order, node, environ.get("TORCHSWARM_NODE_ADDR", node))


class ReconnectingStore:
    """A TCPStore client that waits for the store to come back instead of failing: the store's
    host may die, and the swarm starts it again elsewhere under the same name."""

    def __init__(self, endpoint: str) -> None:
        host, _unused, port = endpoint.rpartition(":")
        self.host, self.port = host, int(port)
        self._client = None
        self._lock = threading.Lock()

    def _connect(self):
        from torch.distributed import TCPStore

        return TCPStore(
            self.host,
            self.port,
            is_master=False,
            timeout=datetime.timedelta(seconds=STORE_TIMEOUT_S),
            wait_for_workers=False,
        )

    def _call(self, name: str, *args):
        from torch.distributed import DistError

        complained = 0.0
        while True:
            try:
                with self._lock:
                    if self._client is None:
                        self._client = self._connect()
                    return getattr(self._client, name)(*args)
            except (DistError, RuntimeError, ValueError) as exc:
                with self._lock:
                    self._client = None
                if time.monotonic() - complained > 30:
                    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    say(f"waiting for the rendezvous store at {self.host}:{self.port} ({why})")
                    complained = time.monotonic()
                time.sleep(1)

    def add(self, key: str, amount: int) -> int:
        return self._call("add", key, amount)

    def set(self, key: str, value: str) -> None:
        self._call("set", key, value)

    def get(self, key: str) -> bytes:
        return self._call("get", key)

    def check(self, keys: list[str]) -> bool:
        return self._call("check", keys)

    def compare_set(self, key: str, expected: str, desired: str) -> bytes:
        return self._call("compare_set", key, expected, desired)


def rendezvous(environ: Mapping[str, str]) -> Rendezvous:
    store = ReconnectingStore(environ["TORCHSWARM_RENDEZVOUS"])
    return Rendezvous(store, environ.get("TORCHSWARM_GENERATION", "none"), member(environ), settings(environ))


def briefly(call: Callable[..., object], *args: object, within: float = 5.0) -> None:
    """Tell the store something on the way out without waiting for it when it is gone (a
    redeploy replaces it too): the others notice this node's silence anyway."""
    thread = threading.Thread(target=call, args=args, daemon=True)
    thread.start()
    thread.join(within)


def start_heart(environ: Mapping[str, str], interval: float = 1.0) -> threading.Thread:
    """Beats from a store client of its own, so a busy main loop never looks like a dead host."""
    beating = rendezvous(environ)

    def beat_forever() -> None:
        while True:
            beating.beat()
            time.sleep(interval)

    thread = threading.Thread(target=beat_forever, name="torchswarm-heart", daemon=True)
    thread.start()
    return thread


def round_command(command: list[str], prefix: int, head_len: int, current: Round) -> list[str]:
    """torchrun's command for this round: its own --nnodes, --node_rank, --master_addr and
    --master_port (the stack's, plus the round's offset) in place of the stack's
    (``head_len``: words before the script; values after '=' or apart)."""
    head, tail = command[prefix:head_len], command[head_len:]
    kept: list[str] = []
    port = DEFAULT_MASTER_PORT
    words = iter(head)
    for word in words:
        name, equals, value = word.partition("=")
        if name not in ROUND_OPTIONS:
            kept.append(word)
            continue
        value = value if equals else next(words, "")
        if name in ("--master_port", "--master-port") and value.isdigit():
            port = int(value)
    chosen = [
        f"--nnodes={len(current.members)}",
        f"--node_rank={current.node_rank}",
        f"--master_addr={current.master.addr}",
        f"--master_port={port + current.port_offset}",
    ]
    return [*command[:prefix], *chosen, *kept, *tail]
