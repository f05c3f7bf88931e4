"""What a swarm manager knows of one training job: its services, tasks, logs, swarm secrets and
configs, the nodes and their GPUs, and the stack file last deployed from this manager.

Reads only, through the docker CLI; what the reads mean is decided by the pure layers (job,
progress, stack). ``training_stack`` and ``training_job_info`` look at the swarm through it.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.torchswarm.ddp.plugins.module_utils._gpu import advertised_gpus
from ansible_collections.torchswarm.ddp.plugins.module_utils._job import job_tasks, time_key
from ansible_collections.torchswarm.ddp.plugins.module_utils._progress import (
    LOG_LINE,
    log_records,
    since_with_margin,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    HASH_LABEL,
    stack_from_text,
    stack_path,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_secrets import JOB_LABEL


class SwarmView:
    def __init__(self, cli: DockerCli, name: str, stack_dir: str) -> None:
        self.cli, self.name = cli, name
        self.path = stack_path(stack_dir, name)

    def node_gpus(self) -> dict[str, int]:
        """Every swarm node's hostname and the GPUs it advertises."""
        nodes = self.cli.inspect(list(self.cli.swarm_nodes()), kind="node")
        return {n["Description"]["Hostname"]: advertised_gpus(n) for n in nodes}

    def engine_version(self) -> str:
        return self.cli.run("version", "--format", "{{.Server.Version}}")

    def services(self) -> list[dict[str, Any]]:
        """The stack's services as ``docker service inspect`` gives them."""
        return self.cli.stack_services(self.name)

    def deployed_hashes(self) -> dict[str, str]:
        """Each deployed service's short name and the stack hash it carries ("" for none)."""
        prefix = f"{self.name}_"
        return {
            s["Spec"]["Name"].removeprefix(prefix): (s["Spec"].get("Labels") or {}).get(HASH_LABEL, "")
            for s in self.services()
        }

    def deployed_stack(self) -> dict[str, Any]:
        """The stack file as last deployed from this manager; {} when there is none."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                return stack_from_text(handle.read())
        except FileNotFoundError:
            return {}

    def labelled(self, kind: str) -> list[dict[str, Any]]:
        """The job's swarm secrets or configs (``kind``)."""
        return self.cli.labelled(kind, f"{JOB_LABEL}={self.name}")

    def job(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The job's state and one row per rank (module_utils._job), and its services."""
        services = self.services()
        task_ids = self.cli.lines("stack", "ps", "--quiet", "--no-trunc", self.name) if services else []
        state = job_tasks(
            self.name, services, self.cli.inspect(task_ids), self.cli.swarm_nodes(), self.cli.ready_nodes()
        )
        return state, services

    def records_since(self, since: str, rows: list, task_ids: list) -> tuple[list, str]:
        """The records in every readable rank's log since then (rank 0's epochs, each rank's
        speed), and the newest line's time."""
        lines = [line for row in rows if _readable(row) for line in self._log(row["service"], since) or []]
        newest = max(
            [since, *(line.split(" ", 1)[0] for line in lines if LOG_LINE.match(line))], key=time_key
        )
        return log_records(lines, task_ids), newest

    def whole_logs(self, rows: list, reads: int = 5) -> dict[str, str]:
        """Each readable rank's whole log (stdout and stderr), read until a read adds no line: a
        single read can miss a remote node's lines (moby#33183)."""
        logs = {}
        for row in filter(_readable, rows):
            seen: dict[str, None] = {}
            for attempt in range(reads):
                lines = self._log(row["service"], timeout=120, stderr=True)
                if lines is None:
                    break
                before = len(seen)
                seen.update(dict.fromkeys(lines))
                if attempt and len(seen) == before:
                    break
            logs[row["service"]] = "\n".join(seen)
        return logs

    def _log(
        self, service: str, since: str = "", timeout: int = 20, stderr: bool = False
    ) -> list[str] | None:
        """A rank's service log lines (``docker service logs --timestamps --no-trunc``), or None
        when the read fails or hangs (a node that died a moment ago): a later read tries again."""
        since_args = ["--since", since_with_margin(since)] if since else []
        try:
            out = self.cli.run(
                "service",
                "logs",
                "--timestamps",
                "--no-trunc",
                *since_args,
                service,
                timeout=timeout,
                stderr=stderr,
            )
        except DockerCliError:
            return None
        return [line for line in out.splitlines() if line.strip()]


def _readable(row: dict) -> bool:
    """A rank whose log can be read: it has a task, and its node is up."""
    return not row["lost"] and bool(row["tasks"])
