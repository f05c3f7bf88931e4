"""The image's entrypoint: every rank's container runs its command through this, for the
bundled trainer and for any user script alike; the script needs to know nothing of it.

    python3 -m torchswarm.launcher torchrun --nnodes=2 ... SCRIPT [ARG...]

- Exports each swarm secret named in TORCHSWARM_SECRETS (a file in /run/secrets) as the
  environment variable of that name, byte for byte. Names are logged, values never.
- Sets NCCL_SOCKET_IFNAME and GLOO_SOCKET_IFNAME to the interface in TORCHSWARM_SUBNET.
- Runs torchrun with each worker wrapped by ``torchswarm.worker`` (exit with the script's own
  code, no interpreter teardown) and forwards SIGTERM and SIGINT to it.
- Completion, per deployment generation (TORCHSWARM_GENERATION): when training finished on this
  node (torchrun exited 0, or a rank's script returned 0), writes the record into the snapshot
  volume. A rank restarted after that exits 0 at once instead of waiting for peers.
- Exit codes: 0 when training finished; EXIT_DO_NOT_RETRY when the script wrote why it cannot
  run into TORCHSWARM_FATAL_FILE (torchrun exits 1 whatever its workers' codes were, so the
  reason needs a way of its own to the task status); EXIT_STOPPED (or torchrun's own non-zero
  code) after SIGTERM, so the swarm restarts the rank; otherwise torchrun's code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping

from torchswarm import EXIT_DO_NOT_RETRY, EXIT_STOPPED, netif, record

SECRETS_DIR = "/run/secrets"
TORCHRUN_MODULES = ("torch.distributed.run",)


def say(message: str) -> None:
    print(f"torchswarm: {message}", file=sys.stderr, flush=True)


def secret_environment(names: str, directory: str = SECRETS_DIR) -> dict[str, str]:
    """The variables to export: name -> the secret file's bytes (as os.environ holds bytes)."""
    env = {}
    for name in filter(None, names.split(",")):
        with open(os.path.join(directory, name), "rb") as handle:
            env[name] = os.fsdecode(handle.read())
    return env


def torchrun_prefix(command: list[str]) -> int:
    """How many words start torchrun (``torchrun``, ``python -m torch.distributed.run``); 0: none."""
    if command and os.path.basename(command[0]) == "torchrun":
        return 1
    if len(command) >= 3 and command[1] == "-m" and command[2] in TORCHRUN_MODULES:
        return 3
    return 0


def wrap_workers(command: list[str]) -> list[str]:
    """The torchrun command with the script run through torchswarm.worker; any other command,
    or torchrun --no-python (no Python script to wrap), as it is."""
    prefix = torchrun_prefix(command)
    if not prefix:
        return command
    from torch.distributed.run import get_args_parser  # torch is slow to import; only here

    try:
        args = get_args_parser().parse_args(command[prefix:])
    except SystemExit:
        return command  # torchrun itself will say what is wrong
    if args.no_python:
        return command
    tail = [args.training_script, *args.training_script_args]
    head = command[: len(command) - len(tail)]
    if args.module:  # "-m" is already among torchrun's options
        return [*head, "torchswarm.worker", "-m", *tail]
    return [*head, "-m", "torchswarm.worker", *tail]


def child_environment(environ: Mapping[str, str], scratch: str) -> dict[str, str]:
    """The command's environment; raises OSError for a secret that is not mounted and
    ValueError for a subnet no interface is in."""
    env = dict(environ)
    env.update(secret_environment(environ.get("TORCHSWARM_SECRETS", "")))
    chosen = netif.configure_socket_ifname(environ.get("TORCHSWARM_SUBNET"), env)
    if chosen:
        say(f"using interface {chosen} for {environ['TORCHSWARM_SUBNET']}")
    env["TORCHSWARM_FATAL_FILE"] = os.path.join(scratch, "fatal")
    env["TORCHSWARM_FINISHED_FILE"] = os.path.join(scratch, "finished")
    return env


def lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return sorted(set(filter(None, handle.read().splitlines())))
    except FileNotFoundError:
        return []


def world_size(finished: list[str]) -> int | None:
    """From the workers' "RANK WORLD_SIZE" lines."""
    sizes = {line.split()[-1] for line in finished}
    return int(sizes.pop()) if len(sizes) == 1 and next(iter(sizes)).isdigit() else None


class Stop:
    """SIGTERM and SIGINT go on to the child; a SIGTERM means this rank is being stopped."""

    def __init__(self, child: subprocess.Popen) -> None:
        self.requested = False
        self.child = child
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        self.requested = True
        self.child.send_signal(signum)


def run(command: list[str], environ: Mapping[str, str] = os.environ) -> int:
    generation = environ.get("TORCHSWARM_GENERATION", "")
    snapshot_dir = environ.get("TORCHSWARM_SNAPSHOT_DIR", "")
    track = bool(generation and snapshot_dir)
    if track:
        done = record.read_complete(snapshot_dir, generation)
        if done:
            finished_at = done.get("finished_at", "?")
            say(f"generation {generation} finished at {finished_at}; nothing left to run here")
            return 0
    scratch = tempfile.mkdtemp(prefix="torchswarm-")
    try:
        env = child_environment(environ, scratch)
    except OSError as exc:
        say(f"a secret named in TORCHSWARM_SECRETS is not mounted: {exc}")
        return EXIT_DO_NOT_RETRY
    except ValueError as exc:
        say(str(exc))
        return EXIT_DO_NOT_RETRY
    exported = sorted(filter(None, environ.get("TORCHSWARM_SECRETS", "").split(",")))
    if exported:
        say(f"exported secrets {', '.join(exported)}")
    started = time.time()
    child = subprocess.Popen(wrap_workers(command), env=env)
    stop = Stop(child)
    code = child.wait()
    code = code if code >= 0 else 128 - code
    reasons = lines(env["TORCHSWARM_FATAL_FILE"])
    finished = lines(env["TORCHSWARM_FINISHED_FILE"])
    if code != 0 and reasons:
        say(f"not retrying (exit {EXIT_DO_NOT_RETRY}): {'; '.join(reasons)}")
        return EXIT_DO_NOT_RETRY
    if stop.requested:
        say(f"stopped by a signal (exit {code or EXIT_STOPPED}); the swarm restarts this rank")
        return code or EXIT_STOPPED
    if code == 0 or finished:
        if code:
            ranks = ", ".join(f.split()[0] for f in finished)
            say(f"rank(s) {ranks} finished the script and torchrun exited {code} after: training finished")
        if track:
            record.write_complete(
                snapshot_dir,
                generation,
                {
                    "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "host": socket.gethostname(),
                    "world_size": world_size(finished),
                    "wall_s": round(time.time() - started, 3),
                },
            )
        return 0
    return code


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python3 -m torchswarm.launcher COMMAND [ARG...]", file=sys.stderr)
        return 2
    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
