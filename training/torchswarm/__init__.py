"""What the training image adds around any DDP script, so that a job behaves as one job.

- ``launcher``: the image's entrypoint (exports secrets, picks the socket interface, runs
  torchrun with every worker wrapped, records completion, exits with a code the swarm reads).
- ``worker``: the wrapper each torchrun worker runs the script through.
- ``report``: ``torchswarm.report(epoch=..., loss=..., **more)``, a user's script's metrics,
  written the way the bundled trainer writes its own; ``torchswarm.step()``, a step trained;
  ``torchswarm.ready()``, the rank's own part of a step done; ``torchswarm.speed(epoch)``, the
  rank's speed record.
- ``record``: the completion record, one file per deployment generation in the snapshot volume.
- ``atomic``: replacing a file whole (snapshots, metrics, the record).
- ``netif``: the interface that holds an address in the job's subnet.
- ``watchdog``, ``stacks``: a round whose ranks stopped stepping ended, with where each rank was
  (waiting in a collective, or stuck in its own code); ``host_check``: what the container got.
- ``rendezvous``, ``elastic``, ``store``: rounds over the hosts that are there (an elastic job):
  who trains, agreed in the stack's rendezvous service; a lost host dropped, a new one added.

Exit codes (the swarm's restart policy retries every non-zero code; the job's state reads these):
"""

import sys
from typing import TextIO

# Input no restart can fix (the script wrote why into TORCHSWARM_FATAL_FILE): the job has failed.
EXIT_DO_NOT_RETRY = 3
# Stopped by SIGTERM after a snapshot (a Docker restart, a drain): retried, the job goes on.
EXIT_STOPPED = 143


def write_line(text: str, stream: TextIO | None = None) -> None:
    """One line in one write (stdout by default). The image runs Python unbuffered, where print()
    writes a text and its newline apart: two local ranks' lines printed at once would merge into
    one, and neither record would be read."""
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def say(message: str) -> None:
    """The launcher's own lines in a rank's log, told apart from the script's by the prefix."""
    write_line(f"torchswarm: {message}", sys.stderr)


from torchswarm.report import ready, report, speed, step  # noqa: E402  (after the constants the submodules import)

__all__ = ["EXIT_DO_NOT_RETRY", "EXIT_STOPPED", "ready", "report", "say", "speed", "step", "write_line"]
