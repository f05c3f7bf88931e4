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
- Checks what the container got (torchswarm.host_check: /dev/shm, ulimits, GPUs, interface),
  printing a record the wait shows; a reserved GPU that is not visible refuses the job. Once a
  round's workers set NCCL up, says which network it chose (torchswarm.nccl), warning when it
  fell back to sockets on a host with InfiniBand.
- A stall watchdog (torchswarm.watchdog): a round whose ranks here stopped stepping is ended and
  re-formed from the newest snapshot, the workers' stacks printed first with where each rank
  was (torchswarm.stacks: waiting in a collective, or stuck in its own code); the job fails
  after TORCHSWARM_STALL_RESTARTS stalls in a row.
- A job that cannot start fails, with its reason, instead of being restarted for ever: a script
  that is not in the image is refused before torchrun starts; a script that fails before its
  first step (torchswarm.step) TORCHSWARM_START_ATTEMPTS times in a row on this node (counted in
  the snapshot volume, across the swarm's restarts) gives up with the workers' errors.
- Exit codes: 0 when training finished; EXIT_DO_NOT_RETRY when the script wrote why it cannot
  run into TORCHSWARM_FATAL_FILE (torchrun exits 1 whatever its workers' codes were, so the
  reason needs a way of its own to the task status), or could not start as above;
  EXIT_STOPPED (or torchrun's own non-zero code) after SIGTERM, so the swarm restarts the rank;
  otherwise torchrun's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from torchswarm import (
    EXIT_DO_NOT_RETRY,
    EXIT_STOPPED,
    elastic,
    host_check,
    nccl,
    netif,
    processes,
    record,
    say,
    stacks,
    write_line,
)
from torchswarm.watchdog import Watchdog
from torchswarm.worker import exit_code, exit_without_finalization

SECRETS_DIR = "/run/secrets"
TORCHRUN_MODULES = ("torch.distributed.run",)
# What the workers report through files (torchswarm.worker, torchswarm.step), fresh each round.
WORKER_FILES = ("FATAL", "FINISHED", "STOPPED", "STEPPED", "ERROR", "PIDS", "STACKS")
# A round this long counts as started though no rank said it stepped (a script that never
# calls torchswarm.step or torchswarm.report).
START_WINDOW_S = 300.0


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


def parse_torchrun(command: list[str]) -> tuple[int, int, Any] | None:
    """(words that start torchrun, words before the script, torchrun's parsed arguments), by
    torchrun's own parser; None for any other command or one torchrun would refuse."""
    prefix = torchrun_prefix(command)
    if not prefix:
        return None
    from torch.distributed.run import get_args_parser  # torch is slow to import; only here

    try:
        args = get_args_parser().parse_args(command[prefix:])
    except SystemExit:
        return None  # torchrun itself will say what is wrong
    return prefix, len(command) - 1 - len(args.training_script_args), args


def wrap_workers(command: list[str]) -> list[str]:
    """The torchrun command with the script run through torchswarm.worker; any other command,
    or torchrun --no-python (no Python script to wrap), as it is."""
    parsed = parse_torchrun(command)
    if parsed is None or parsed[2].no_python:
        return command
    _unused, head_len, args = parsed
    head, tail = command[:head_len], command[head_len:]
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
    for what in WORKER_FILES:
        env[f"TORCHSWARM_{what}_FILE"] = os.path.join(scratch, what.lower())
    nccl.environment(env, scratch)
    return env


def missing_script(command: list[str], cwd: str = ".") -> str | None:
    """Why torchrun's script cannot run: it is not a file in the image (a typo in job_script).
    None for a module (-m), --no-python or any other command."""
    parsed = parse_torchrun(command)
    if parsed is None or parsed[2].module or parsed[2].no_python:
        return None
    script = parsed[2].training_script
    if os.path.isfile(os.path.join(cwd, script)):
        return None
    return f"the script {script} is not in the image (no such file in {os.path.abspath(cwd)})"


def check_host(env: Mapping[str, str]) -> str | None:
    """What this container got (torchswarm.host_check), printed as a record the wait shows and
    as lines in the log; why the job cannot run here, or None."""
    import torch  # torchrun's command was parsed with it: already imported

    found = host_check.facts(env, torch.cuda.device_count(), torch.version.cuda is not None)
    checked = host_check.record(found)
    print(json.dumps(checked), flush=True)
    say(f"host check: {checked['line']}")
    for warning in checked["warnings"]:
        say(f"warning: {warning}")
    return checked["refused"]


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

    def __init__(self) -> None:
        self.requested = False
        self.elastic = False
        self.child: subprocess.Popen | None = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        self.requested = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)
        elif self.between_rounds:
            # Waiting for peers or for the store, with nothing to save: go now, not at SIGKILL.
            say(f"stopped by a signal between rounds (exit {EXIT_STOPPED})")
            raise SystemExit(EXIT_STOPPED)

    @property
    def between_rounds(self) -> bool:
        return self.elastic and (self.child is None or self.child.poll() is not None)


def start(command: list[str], env: Mapping[str, str], stop: Stop) -> subprocess.Popen:
    """torchrun (in a process group of its own, so a round can be killed whole) with fresh files
    for what its workers report."""
    for what in WORKER_FILES:
        open(env[f"TORCHSWARM_{what}_FILE"], "w").close()
    for path in stacks.files(env["TORCHSWARM_STACKS_FILE"]).values():
        os.remove(path)  # an earlier round's ranks: this round's may be numbered otherwise
    stop.child = subprocess.Popen(wrap_workers(command), env=env, start_new_session=True)
    return stop.child


def exit_status(child: subprocess.Popen) -> int:
    code = child.wait()
    return code if code >= 0 else 128 - code


class Outcome:
    """What one torchrun's exit means for the job."""

    def __init__(self, code: int, env: Mapping[str, str], stop: Stop) -> None:
        self.code = code
        self.reasons = lines(env["TORCHSWARM_FATAL_FILE"])
        self.finished = lines(env["TORCHSWARM_FINISHED_FILE"])
        self.stopped = stop.requested
        self.fatal = code != 0 and bool(self.reasons)
        self.done = not self.fatal and not self.stopped and (code == 0 or bool(self.finished))
        # This node's ranks stopped after a snapshot, agreed with a peer that was stopped (a
        # drain, a restart): the peer's launcher ends the round only once its own torchrun has
        # exited, which may be after this one looks.
        self.peer_stopped = not self.stopped and bool(lines(env.get("TORCHSWARM_STOPPED_FILE", "")))
        self.stepped = bool(lines(env.get("TORCHSWARM_STEPPED_FILE", "")))
        self.errors = lines(env.get("TORCHSWARM_ERROR_FILE", ""))

    def count_start(self, env: Mapping[str, str], ran_s: float, own: bool = True) -> None:
        """After a round that ended without finishing: a round in which a rank stepped (or that
        ran START_WINDOW_S) starts the count of failed starts again; this node's ``own``
        failure before that adds one (not a round that another node's failure or loss ended
        while this node's workers were well), and the last of TORCHSWARM_START_ATTEMPTS makes
        it fatal."""
        generation = env.get("TORCHSWARM_GENERATION", "")
        snapshot_dir = env.get("TORCHSWARM_SNAPSHOT_DIR", "")
        if not (generation and snapshot_dir):
            return
        if self.stepped or ran_s >= START_WINDOW_S:
            record.clear_count(snapshot_dir, generation, record.FAILED_STARTS)
            return
        if not own or self.done or self.fatal or self.stopped or self.code == 0:
            return
        count = record.count(snapshot_dir, generation, record.FAILED_STARTS)
        attempts = int(env.get("TORCHSWARM_START_ATTEMPTS", "3"))
        errors = "; ".join(self.errors) or f"torchrun exited {self.code}"
        if count < attempts:
            say(f"the script failed before its first step ({count} of {attempts} tries): {errors}")
            return
        self.reasons = [f"the script failed {count} times in a row before its first step: {errors}"]
        self.fatal = True

    def again(self, members_changed: bool) -> bool:
        """Whether an elastic launcher joins the next round: when the members changed or a
        peer's stop ended the round, unless this node refused its input (exit 3) or was stopped:
        those are the swarm's to see."""
        return (members_changed or self.peer_stopped) and not (self.done or self.fatal or self.stopped)

    def exit_code(self) -> int:
        """The launcher's exit code for any outcome but ``done``."""
        if self.fatal:
            say(f"not retrying (exit {EXIT_DO_NOT_RETRY}): {'; '.join(self.reasons)}")
            return EXIT_DO_NOT_RETRY
        if self.stopped:
            say(f"stopped by a signal (exit {self.code or EXIT_STOPPED}); the swarm restarts this rank")
            return self.code or EXIT_STOPPED
        return self.code


def record_done(outcome: Outcome, environ: Mapping[str, str], started: float) -> None:
    if outcome.code:
        ranks = ", ".join(f.split()[0] for f in outcome.finished)
        say(f"rank(s) {ranks} finished the script, torchrun exited {outcome.code} after: training finished")
    generation = environ.get("TORCHSWARM_GENERATION", "")
    snapshot_dir = environ.get("TORCHSWARM_SNAPSHOT_DIR", "")
    if generation and snapshot_dir:
        record.write_complete(
            snapshot_dir,
            generation,
            {
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "host": socket.gethostname(),
                "world_size": world_size(outcome.finished),
                "wall_s": round(time.time() - started, 3),
            },
        )


def stalled(watchdog: Watchdog, round_began: float) -> tuple[str, bool] | None:
    """The verdict on a round whose ranks here stopped stepping: ended at once, as a lost
    host's, after every worker's stacks are in the log and a ``stalled`` record says where each
    rank was. None while they step."""
    silent = watchdog.silent_for(round_began)
    if silent is None:
        return None
    stalls = watchdog.count_stall()
    fails = watchdog.restarts + 1
    why = f"no step for {silent:.0f} s (stall {stalls} in a row; {fails} in a row fail the job)"
    say(f"job stalled: {why}; the workers' stacks follow")
    watchdog.dump_stacks()
    # For every worker to write them; the other nodes' ranks wait for the same stuck rank, so their
    # watchdogs fire in these seconds too, before this one ends the round, and say where theirs are.
    time.sleep(2)
    ranks = []
    for rank, dump in sorted(watchdog.stacks().items()):
        write_line(f"torchswarm: rank {rank}'s stacks:\n{dump.rstrip()}", sys.stderr)
        ranks.append({"rank": rank, **stacks.where(dump)})
    write_line(json.dumps({"event": "stalled", "silent_s": round(silent), "stalls": stalls, "ranks": ranks}))
    return f"the job stalled: {why}", True


def say_nccl(check: nccl.Check) -> None:
    """The network NCCL chose here, once a round, when its workers have set it up: a record the
    wait shows (with a warning for sockets on a host with InfiniBand) and a line in the log."""
    found = check.record()
    if found is None:
        return
    write_line(json.dumps(found))
    say(f"NCCL uses {found['network']}" + (f" ({found['devices']})" if found["devices"] else ""))
    for warning in found["warnings"]:
        say(f"warning: {warning}")


def say_nccl_warnings(check: nccl.Check) -> None:
    for line in check.warnings():
        say(f"NCCL said: {line}")


def give_up_on_stalls(outcome: Outcome, watchdog: Watchdog) -> None:
    if watchdog.given_up:
        outcome.reasons = [
            f"the job stalled {watchdog.stalls} times in a row (no step for {watchdog.timeout:.0f} s "
            "each time; the workers' stacks are in the ranks' logs)"
        ]
        outcome.fatal = True


def kill_round(child: subprocess.Popen, lost: bool, grace: float) -> None:
    """A lost member: kill at once (its peers may sit in a collective with it forever).
    Otherwise SIGTERM, so the trainer snapshots (within about a second), then kill after ``grace``."""
    if not lost:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    # torchrun's process group does not hold its workers (torchswarm.processes): kill them too,
    # or a stuck one lives on beside the next round, holding its GPU.
    members = processes.tree(child.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    processes.signal_all(members)
    child.wait()


def run_elastic(command: list[str], env: Mapping[str, str], stop: Stop, started: float) -> int:
    """Round after round of torchrun over the nodes that are there (torchswarm.rendezvous),
    until training finished, a stop, or a failure of this node's own."""
    parsed = parse_torchrun(command)
    if parsed is None:
        return exit_status(start(command, env, stop))
    prefix, head_len, _unused = parsed
    stop.elastic = True
    rendezvous = elastic.rendezvous(env)
    elastic.start_heart(env)
    generation = env.get("TORCHSWARM_GENERATION", "")
    snapshot_dir = env.get("TORCHSWARM_SNAPSHOT_DIR", "")
    marked = bool(generation and snapshot_dir)
    rendezvous.trained = marked and record.has_trained(snapshot_dir, generation)
    grace = float(env.get("TORCHSWARM_ROUND_GRACE", "20"))
    # Stalls in a row, job-wide: a round's stall counts once, whichever nodes see it.
    stalls = rendezvous.key("stalls")

    def count_stall() -> int:
        first = rendezvous.store.add(rendezvous.key("r", current.number, "stalled"), 1) == 1
        return rendezvous.store.add(stalls, 1 if first else 0)

    watchdog = Watchdog(env, count_stall, lambda: rendezvous.store.set(stalls, "0"))
    nccl_check = nccl.Check(env)
    while not stop.requested:
        if rendezvous.finished():
            say("the job finished training; nothing left to run here")
            return 0
        say(f"joining the rendezvous as {rendezvous.me.node}")
        current = rendezvous.join()
        say(
            f"round {current.number}: node rank {current.node_rank} of {len(current.members)} "
            f"({current.names()}), master {current.master.addr}"
        )
        if marked and not rendezvous.trained:
            record.mark_trained(snapshot_dir, generation)
        rendezvous.trained = True
        nccl_check.new_round()
        child = start(elastic.round_command(command, prefix, head_len, current), env, stop)
        round_began, round_wall = time.monotonic(), time.time()
        watchdog.new_round()
        verdict = None
        while child.poll() is None and verdict is None and not stop.requested:
            say_nccl(nccl_check)
            verdict = rendezvous.check(current) or stalled(watchdog, round_wall)
            if verdict is None:
                time.sleep(rendezvous.settings.poll)
        if verdict is not None:
            reason, lost = verdict
            say(f"round {current.number} ends: {reason}")
            elastic.briefly(rendezvous.end, current.number, reason, lost)
            kill_round(child, lost, grace)
        say_nccl_warnings(nccl_check)
        outcome = Outcome(exit_status(child), env, stop)
        if outcome.done:
            record_done(outcome, env, started)
            elastic.briefly(rendezvous.finish)
            return 0
        again = outcome.again(members_changed=verdict is not None or rendezvous.current() != current.number)
        # Every node's script may fail at its start at once: whichever ended the round, a node
        # whose own workers noted an error counts it (a killed worker notes none).
        outcome.count_start(env, time.monotonic() - round_began, own=not again or bool(outcome.errors))
        watchdog.stalls = rendezvous.store.add(stalls, 0)  # every node gives up with the one that did
        give_up_on_stalls(outcome, watchdog)
        if again and not outcome.fatal:
            continue  # the next round resumes from the newest snapshot
        # This node's own failure or stop: the others re-form without waiting for its silence.
        why = "a stop" if outcome.stopped else f"torchrun exited {outcome.code}"
        elastic.briefly(rendezvous.end, current.number, why, not outcome.stopped)
        return outcome.exit_code()
    return EXIT_STOPPED


def run(command: list[str], environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    generation = environ.get("TORCHSWARM_GENERATION", "")
    snapshot_dir = environ.get("TORCHSWARM_SNAPSHOT_DIR", "")
    if generation and snapshot_dir:
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
    output_dir = environ.get("TORCHSWARM_OUTPUT_DIR", "")
    if output_dir:
        # What the script leaves here comes back to the controller after the run (rank 0's).
        try:
            os.makedirs(output_dir, exist_ok=True)
        except OSError as exc:
            say(f"the output directory {output_dir} cannot be made: {exc}")
            return EXIT_DO_NOT_RETRY
    refused = missing_script(command) or (check_host(env) if parse_torchrun(command) else None)
    if refused:
        say(f"not retrying (exit {EXIT_DO_NOT_RETRY}): {refused}")
        return EXIT_DO_NOT_RETRY
    started = time.time()
    stop = Stop()
    if elastic.enabled(environ):
        return run_elastic(command, env, stop, started)
    child, watchdog, nccl_check = start(command, env, stop), Watchdog(env), nccl.Check(env)
    stall = None
    while child.poll() is None and stall is None and not stop.requested:
        say_nccl(nccl_check)
        stall = stalled(watchdog, started)
        if stall is None:
            time.sleep(1)
    if stall is not None:
        kill_round(child, lost=True, grace=0)  # the swarm restarts the task, from the snapshot
    say_nccl_warnings(nccl_check)
    outcome = Outcome(exit_status(child), env, stop)
    give_up_on_stalls(outcome, watchdog)
    outcome.count_start(env, time.time() - started)
    if outcome.done:
        record_done(outcome, env, started)
        return 0
    return outcome.exit_code()


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python3 -m torchswarm.launcher COMMAND [ARG...]", file=sys.stderr)
        return 2
    return run(sys.argv[1:])


if __name__ == "__main__":
    # The rendezvous' store client is torch's: its threads can abort the interpreter's teardown
    # (SIGABRT instead of the exit code the swarm should see), as in a worker.
    try:
        code = main()
    except SystemExit as stopped:  # a stop between rounds
        code = exit_code(stopped.code)
    exit_without_finalization(code)
