"""The job's rendezvous store: a TCPStore server, the stack's ``rendezvous`` service.

    python3 -m torchswarm.store [PORT]

It holds only the rounds of torchswarm.rendezvous (who trains, beats), never training data, so
losing it costs one re-formed round: the swarm starts it again on another manager, launchers
reconnect, find no round and form a new one from the newest snapshot.
"""

from __future__ import annotations

import datetime
import signal
import sys
import time

DEFAULT_PORT = 29400


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PORT
    from torch.distributed import TCPStore

    # Keep a reference: the server lives as long as this object.
    store = TCPStore(
        "0.0.0.0", port, is_master=True, wait_for_workers=False, timeout=datetime.timedelta(seconds=30)
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"torchswarm: rendezvous store serving on port {store.port}", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
