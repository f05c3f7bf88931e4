#!/usr/bin/env python3
"""The image's entrypoint: every rank's container runs its command through this.

- Exports each swarm secret named in TORCHSWARM_SECRETS (a file in /run/secrets) as the
  environment variable of that name, byte for byte, so a script reads os.environ and needs to
  know nothing of the swarm. Names are logged, values never.
- Runs the command (torchrun ...) as a child and forwards SIGTERM and SIGINT to it.
- Exits with the command's code, except when the script wrote why it cannot run into the file
  named by TORCHSWARM_FATAL_FILE: then 3 (EXIT_DO_NOT_RETRY). torchrun exits 1 whatever its
  workers' codes were, so the reason needs a way of its own to reach the swarm's task status,
  where the job's state reads it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

SECRETS_DIR = "/run/secrets"
EXIT_DO_NOT_RETRY = 3


def secret_environment(names: str, directory: str = SECRETS_DIR) -> dict[bytes, bytes]:
    """The variables to export: name -> the secret file's bytes."""
    env = {}
    for name in filter(None, names.split(",")):
        with open(os.path.join(directory, name), "rb") as handle:
            env[name.encode()] = handle.read()
    return env


def run(command: list[str]) -> int:
    fatal_dir = tempfile.mkdtemp(prefix="torchswarm-")
    fatal_file = os.path.join(fatal_dir, "fatal")
    env = dict(os.environb)
    try:
        env.update(secret_environment(os.environ.get("TORCHSWARM_SECRETS", "")))
    except OSError as exc:
        print(f"torchswarm: a secret named in TORCHSWARM_SECRETS is not mounted: {exc}", file=sys.stderr)
        return EXIT_DO_NOT_RETRY
    env[b"TORCHSWARM_FATAL_FILE"] = fatal_file.encode()
    exported = sorted(filter(None, os.environ.get("TORCHSWARM_SECRETS", "").split(",")))
    if exported:
        print(f"torchswarm: exported secrets {', '.join(exported)}", file=sys.stderr, flush=True)
    child = subprocess.Popen(command, env=env)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda s, _frame: child.send_signal(s))
    code = child.wait()
    if code != 0 and os.path.exists(fatal_file):
        with open(fatal_file, encoding="utf-8", errors="replace") as handle:
            reasons = sorted(set(handle.read().splitlines()))
        print(f"torchswarm: not retrying (exit {EXIT_DO_NOT_RETRY}): {'; '.join(reasons)}", file=sys.stderr)
        return EXIT_DO_NOT_RETRY
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: torchswarm-entrypoint COMMAND [ARG...]")
    sys.exit(run(sys.argv[1:]))
