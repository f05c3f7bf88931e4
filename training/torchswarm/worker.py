"""Runs one torchrun worker's script, then exits with the script's own code without
interpreter teardown.

    torchrun ... -m torchswarm.worker SCRIPT [ARG...]        (the launcher writes this)
    torchrun ... -m torchswarm.worker -m MODULE [ARG...]

torch's C++ threads can abort a process during interpreter finalization ("terminate called
without an active exception", SIGABRT) after the script has finished and destroyed its process
group: 3 of 300 short 2-rank runs here (benchmarks/trainer_exits.py). The swarm then restarts a
finished rank, which waits for peers that are gone. So the script runs as ``__main__`` here,
atexit handlers run as usual, and the process ends with os._exit. A rank whose script returned
0 leaves "RANK WORLD_SIZE" in TORCHSWARM_FINISHED_FILE for the launcher, one that stopped after a
snapshot (exit 143: SIGTERM, agreed by every rank) the same in TORCHSWARM_STOPPED_FILE. One that
failed leaves why, on one line, in TORCHSWARM_ERROR_FILE: the exception and where it was raised,
or its exit code and the last lines it wrote to stderr (argparse's complaint, say). On SIGUSR1
it writes every thread's stack to TORCHSWARM_STACKS_FILE-<rank> (the stall watchdog's).
"""

from __future__ import annotations

import atexit
import faulthandler
import os
import runpy
import signal
import sys
import traceback
from collections import deque
from typing import Any, NoReturn

from torchswarm import EXIT_STOPPED


def exit_code(value: object) -> int:
    """What ``python script.py`` would exit with after ``sys.exit(value)``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


class StderrTail:
    """sys.stderr as it was, keeping the last lines written through it."""

    def __init__(self, stream: Any, keep: int = 3) -> None:
        self._stream = stream
        self._partial = ""
        self.lines: deque[str] = deque(maxlen=keep)

    def write(self, text: str) -> int:
        *whole, self._partial = (self._partial + text).split("\n")
        self.lines.extend(line.strip() for line in whole if line.strip())
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def why_it_failed(exc: BaseException) -> str:
    """``ModuleNotFoundError: No module named 'x' (train.py:3)``: the exception, and the file and
    line of the traceback's last frame (the script's, or a library's it called)."""
    what = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{what} ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else what


def note_failure(text: str) -> None:
    path = os.environ.get("TORCHSWARM_ERROR_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"rank {os.environ.get('RANK', '?')}: {' '.join(text.split())[:300]}\n")


_stacks: Any = None  # kept open: faulthandler writes to its descriptor


def stacks_file() -> Any:
    """Where this rank's stacks go when the launcher asks: TORCHSWARM_STACKS_FILE-<rank>, which
    the launcher prints into the log and reads for where the rank waits; else stderr."""
    global _stacks
    prefix = os.environ.get("TORCHSWARM_STACKS_FILE")
    if not prefix:
        return sys.__stderr__
    _stacks = open(f"{prefix}-{os.environ.get('RANK', '0')}", "w", encoding="utf-8")  # noqa: SIM115
    return _stacks


def run(argv: list[str]) -> int:
    """Run the script (or ``-m MODULE``) as __main__ with ``argv``; its exit code."""
    tail = sys.stderr = StderrTail(sys.stderr)
    # The launcher's stall watchdog asks for every thread's stack with SIGUSR1.
    faulthandler.register(signal.SIGUSR1, file=stacks_file(), all_threads=True)
    pids = os.environ.get("TORCHSWARM_PIDS_FILE")
    if pids:
        with open(pids, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    try:
        if argv[0] == "-m":
            sys.argv = argv[1:]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exit_code(exc.code)
        if code not in (0, EXIT_STOPPED):
            note_failure(f"exit {code}" + (f": {' | '.join(tail.lines)}" if tail.lines else ""))
        return code
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except BaseException as exc:  # whatever the script raised: printed as Python would, exit 1
        traceback.print_exc()
        note_failure(why_it_failed(exc))
        return 1
    return 0


def finish(code: int) -> NoReturn:
    """Record a finished or stopped rank, then exit without finalization."""
    recorded = {0: "TORCHSWARM_FINISHED_FILE", EXIT_STOPPED: "TORCHSWARM_STOPPED_FILE"}.get(code, "")
    path = os.environ.get(recorded)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{os.environ.get('RANK', '?')} {os.environ.get('WORLD_SIZE', '?')}\n")
    exit_without_finalization(code)


def exit_without_finalization(code: int) -> NoReturn:
    """Run atexit handlers, flush, and exit before torch's C++ threads can abort the finalization."""
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> NoReturn:
    if len(sys.argv) < 2 or (sys.argv[1:2] == ["-m"] and len(sys.argv) < 3):
        print("usage: python -m torchswarm.worker SCRIPT [ARG...] | -m MODULE [ARG...]", file=sys.stderr)
        finish(2)
    finish(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
