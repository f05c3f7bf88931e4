"""One image onto many hosts: who sends to whom, and what travels on the wire.

Pure: host names and strings in, plans and argv lists out. The image role plans the transfers
with ``fanout_rounds``; the image_relay module speaks the small protocol below between a sender (a
host that holds the image, or the controller) and a receiver (a host that does not).

Three plans (``PLANS``), each a list of rounds that run one after another; a round maps each
receiving host to the host it gets the image from:

- ``chain`` (the default): one round. The hosts that lack the image form a chain from a node
  that holds it (from the controller when none does); each receiver passes the stream on to the
  next one as it arrives, so N hosts hold the image in about one link-time plus a short delay
  per hop, and every link carries it once.
- ``rounds``: every host that holds the image sends it to one that does not, so the holders
  double each round: N hosts have it after ceil(log2(N+1)) rounds.
- ``star``: the controller sends to every host itself, in one round (for hosts that cannot reach
  each other).

In every plan the receiver checks the image ID before the host counts as a holder.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

# The first line a sender writes; then the image's layers (image_layers.layers_line), the
# receiver's answer with those it holds, and the image stream without them.
MAGIC = "TORCHSWARM-IMAGE"
VERSION = "2"
# A header line is short; more than this before a newline is not a sender of ours.
HEADER_LIMIT = 512


PLANS = ("chain", "rounds", "star")


def fanout_rounds(
    missing: Sequence[str], holders: Sequence[str], controller: str = "localhost", plan: str = "chain"
) -> list[dict[str, str]]:
    """The rounds that get the image onto ``missing`` by ``plan`` (PLANS): each round maps a
    receiving host to the host that sends to it. In a chain, a receiver's sender is the host
    before it in the same round, which passes the stream on as it arrives.

    ``holders`` are hosts that already hold the image ID; they serve before the controller,
    whose uplink is the one to spare (in a chain, each heads a chain of its own).
    """
    if plan not in PLANS:
        raise ValueError(f"plan {plan!r}: expected one of {', '.join(PLANS)}")
    missing = list(dict.fromkeys(missing))
    if not missing:
        return []
    if plan == "star":
        return [dict.fromkeys(missing, controller)]
    nodes = [h for h in dict.fromkeys(holders) if h not in missing and h != controller]
    if plan == "chain":
        heads = nodes[: len(missing)] or [controller]
        chain: dict[str, str] = {}
        for i, head in enumerate(heads):
            previous = head
            for host in missing[i :: len(heads)]:
                chain[host] = previous
                previous = host
        return [chain]
    rounds: list[dict[str, str]] = []
    while missing:
        senders = [*nodes, controller]
        batch, missing = missing[: len(senders)], missing[len(senders) :]
        rounds.append(dict(zip(batch, senders[: len(batch)], strict=True)))
        nodes += batch
    return rounds


def forwards_to(round_: dict[str, str], host: str) -> str | None:
    """The receiver ``host`` passes the stream on to in a chain's round, or None."""
    return next((receiver for receiver, sender in round_.items() if sender == host), None)


def chain_after(round_: dict[str, str], host: str) -> list[str]:
    """The hosts after ``host`` down its chain in a chain's round, in order."""
    after: list[str] = []
    while (host := forwards_to(round_, host)) is not None and host not in after:
        after.append(host)
    return after


def header(token: str, compression: str) -> bytes:
    """The line a sender writes before the image: protocol version, compression, token."""
    return f"{MAGIC} {VERSION} {compression} {token}\n".encode()


def header_problem(line: bytes, token: str, compression: str) -> str | None:
    """Why a receiver must refuse a connection whose first line is ``line``; None to accept.

    The token (made afresh for each run) keeps anyone else on the network from loading an
    archive, which could retag any image on the host; compared in constant time.
    """
    parts = line.decode("ascii", "replace").strip().split(" ")
    if len(parts) != 4 or parts[0] != MAGIC:
        return "not a torchswarm image stream"
    if parts[1] != VERSION:
        return f"protocol version {parts[1]}, expected {VERSION}"
    if not hmac.compare_digest(parts[3].encode(), token.encode()):
        return "wrong token"
    if parts[2] != compression:
        return f"compression {parts[2]}, expected {compression}"
    return None


def save_command(image: str) -> list[str]:
    """What a sender reads the archive from (by name, so the archive carries the tag)."""
    return ["docker", "save", image]


def compress_commands(compression: str) -> list[list[str]]:
    """What the sender pipes the archive through, without the layers the receiver holds."""
    # Level 1: on a 1.4 GB torch image 2.4x smaller at the speed of docker save itself, with
    # half the CPU of level 3 (which is only 10% smaller) for senders that share cores.
    return [["zstd", "-1", "-T0", "-q", "-c"]] if compression == "zstd" else []


def load_commands(compression: str) -> list[list[str]]:
    """The pipeline a receiver writes the stream into."""
    load = ["docker", "load", "--quiet"]
    return [["zstd", "-d", "-q", "-c"], load] if compression == "zstd" else [load]


def reply(image_id: str | None, problem: str | None = None) -> bytes:
    """The receiver's answer once the stream is loaded: OK and the ID it now holds, or why not."""
    return f"OK {image_id}\n".encode() if problem is None else f"ERR {problem}\n".encode()


def reply_problem(line: bytes, image_id: str) -> str | None:
    """Why the sender must count the transfer as failed, from the receiver's answer."""
    text = line.decode("utf-8", "replace").strip()
    if not text:
        return "the receiver closed the connection without an answer"
    if text.startswith("ERR "):
        return text[4:]
    if text != f"OK {image_id}":
        return f"unexpected answer {text[:120]!r}"
    return None
