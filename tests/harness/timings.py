"""Wall times of everything `make test` runs, printed as one table at its end (CI keeps its log).

    timings.py run NAME [--limit S] [--tag] -- COMMAND...
                                        run COMMAND, echo its output (each line tagged [NAME]
                                        with --tag, for targets that run side by side), record
                                        NAME's wall time; for molecule, also each step of the
                                        scenario; after S seconds stop it (and what it started),
                                        naming it
    timings.py report                   print the table of what was recorded

Records go to $TORCHSWARM_TIMINGS (default .cache/timings/records.tsv), one line each:
kind, name, seconds, status, start (epoch seconds). molecule/conftest.py adds each check's time,
and for a failed check a "why" line (its assertion, on one line); a failed target gets one too
(pytest's FAILED/ERROR lines, else its last lines), since CI keeps only the end of its log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

RECORDS = Path(os.environ.get("TORCHSWARM_TIMINGS", ".cache/timings/records.tsv"))
# molecule's step lines: "default ➜ converge: Executing" ... "default ➜ converge: Executed: ...",
# or without a terminal (CI) "[default > converge] Executing" ... "[default > converge] Executed: ..."
STEP = re.compile(
    r"(?:(?P<scenario>[\w-]+) ➜ (?P<step>[\w-]+):|\[(?P<scenario_>[\w-]+) > (?P<step_>[\w-]+)\]) "
    r"(?P<what>Executing|Executed)"
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Why a target failed, best first: pytest's short summary of a failed check; molecule's own
# errors (a failed step, idempotence); then Ansible's (a check's playbook may fail on purpose, so
# these only when there is nothing better).
WHY = (
    re.compile(r"^(FAILED|ERROR) \S+::"),
    re.compile(r"^(ERROR|CRITICAL) (?!.*RETRYING)"),
    re.compile(r"^fatal: |^ERROR! "),
)


def record(kind: str, name: str, seconds: float, status: str) -> None:
    """One line (appended whole, so that two lanes' lines do not mix), with when it began."""
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as f:
        f.write(f"{kind}\t{name}\t{seconds:.1f}\t{status}\t{time.time() - seconds:.1f}\n")


def run(name: str, command: list[str], limit: float = 0, tag: bool = False) -> int:
    env = dict(os.environ, TORCHSWARM_TIMINGS=str(RECORDS.resolve()))
    started = time.monotonic()
    step_started: dict[str, float] = {}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        print(f"\ntimings.py: {name} ran past its limit of {limit:.0f} s: stopping it", flush=True)
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(10)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limit, stop) if limit else None
    if timer:
        timer.daemon = True
        timer.start()
    prefix = f"[{name}] ".encode() if tag else b""
    last: deque[str] = deque(maxlen=5)
    failures: list[list[str]] = [[] for _unused in WHY]
    for raw in proc.stdout:
        sys.stdout.buffer.write(prefix + raw)  # one write a line: lines of two lanes do not mix
        sys.stdout.flush()
        text = ANSI.sub("", raw.decode(errors="replace")).strip()
        if text:
            last.append(text)
            kind = next((i for i, pattern in enumerate(WHY) if pattern.search(text)), None)
            if kind is not None:
                failures[kind].append(text)
        match = STEP.search(text)
        if not match:
            continue
        key = f"{match['scenario'] or match['scenario_']}: {match['step'] or match['step_']}"
        if match["what"] == "Executing":
            step_started[key] = time.monotonic()
        elif key in step_started:
            record("step", key, time.monotonic() - step_started.pop(key), "ok")
    rc = proc.wait()
    if timer:
        timer.cancel()
    if timed_out.is_set():
        rc = 124
    for key, began in step_started.items():  # a step that never finished is where it failed
        record("step", key, time.monotonic() - began, "unfinished")
    status = f"timed out after {limit:.0f} s" if timed_out.is_set() else "ok" if rc == 0 else f"rc {rc}"
    record("target", name, time.monotonic() - started, status)
    if rc != 0:
        why = next((found[-3:] for found in failures if found), list(last))
        record("why", name, 0, " ".join(" | ".join(why).split())[:600])
    return rc


def report() -> None:
    rows = [line.split("\t") for line in RECORDS.read_text().splitlines()] if RECORDS.exists() else []
    width = max([len(r[1]) for r in rows] + [50]) + 6

    def line(name: str, seconds: str, status: str, indent: int = 0) -> None:
        print(f"{' ' * indent + name:<{width}}{seconds:>8}  {status}")

    print()
    line("make test: wall times", "s", "status")
    total = 0.0
    for kind, name, seconds, status, _unused in rows:
        if kind != "target":
            continue
        total += float(seconds)
        line(name, seconds, status)
        # A scenario's steps follow its target (molecule-<scenario>), its checks under verify.
        mine = [r for r in rows if r[0] != "target" and f"molecule-{r[1].split(':', 1)[0]}" == name]
        steps = [r for r in mine if r[0] == "step"]
        checks = [r for r in mine if r[0] == "check"]
        for _unused, step, s, st, _unused in steps:
            line(step, s, st, 2)
            if step.endswith(": verify"):
                for _unused, check, cs, cst, _unused in checks:
                    line(check, cs, cst, 4)
        if not any(step[1].endswith(": verify") for step in steps):
            for _unused, check, cs, cst, _unused in checks:
                line(check, cs, cst, 4)
    line("total of the targets (side by side lanes overlap)", f"{total:.1f}", "")
    targets = [r for r in rows if r[0] == "target"]
    if targets:
        wall = max(float(r[4]) + float(r[2]) for r in targets) - min(float(r[4]) for r in targets)
        line("wall time of make test", f"{wall:.1f}", "")
    outcomes = [r[3] for r in rows if r[0] == "check"]
    if outcomes:
        passed = outcomes.count("passed")
        print(f"molecule checks: {passed} passed, {len(outcomes) - passed} failed")
    for _unused, check, _unused, why, _unused in (r for r in rows if r[0] == "why"):
        print(f"failed: {check}: {why}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and "--" in argv:
        split = argv.index("--")
        options = argv[2:split]
        limit = float(options[options.index("--limit") + 1]) if "--limit" in options else 0
        return run(argv[1], argv[split + 1 :], limit, "--tag" in options)
    if argv == ["report"]:
        report()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
