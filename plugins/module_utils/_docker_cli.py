"""The docker CLI on a swarm manager, as the modules use it: run, fail clearly, parse JSON."""

from __future__ import annotations

import json
from typing import Any


class DockerCliError(RuntimeError):
    pass


class DockerCli:
    """Wraps ``module.run_command``; every call is argv, never a shell line."""

    def __init__(self, module: Any, binary: str = "docker") -> None:
        self.module = module
        self.binary = module.get_bin_path(binary, required=True)

    def run(self, *args: str, data: str | None = None, timeout: int = 0, stderr: bool = False) -> str:
        """``data`` goes to stdin as it is (no newline added: it may be a secret's value);
        ``timeout``: seconds after which coreutils' timeout ends the call (it fails with rc 124);
        ``stderr``: its output too, after stdout (``docker service logs`` writes a task's stderr there)."""
        limit = [self.module.get_bin_path("timeout", required=True), str(timeout)] if timeout else []
        rc, out, err = self.module.run_command([*limit, self.binary, *args], data=data, binary_data=True)
        if rc != 0:
            raise DockerCliError(
                f"docker {' '.join(args[:3])} failed (rc {rc}): {err.strip() or out.strip()}"
            )
        return f"{out}\n{err}" if stderr else out

    def lines(self, *args: str) -> list[str]:
        return [line for line in self.run(*args).splitlines() if line.strip()]

    def inspect(self, ids: list[str], kind: str = "") -> list[dict[str, Any]]:
        """``docker [KIND] inspect IDS``; without a kind, plain ``docker inspect`` (tasks)."""
        if not ids:
            return []
        return json.loads(self.run(*([kind] if kind else []), "inspect", *ids))

    def swarm_nodes(self) -> dict[str, str]:
        """The swarm's nodes, ID -> hostname."""
        lines = self.lines("node", "ls", "--format", "{{.ID}} {{.Hostname}}")
        return dict(line.split(" ", 1) for line in lines)

    def ready_nodes(self) -> list[str]:
        """Hostnames of the swarm's nodes that are up (status Ready)."""
        lines = self.lines("node", "ls", "--format", "{{.Status}} {{.Hostname}}")
        return [line.split(" ", 1)[1] for line in lines if line.startswith("Ready ")]

    def labelled(self, kind: str, label: str) -> list[dict[str, Any]]:
        """The swarm secrets or configs (``kind``) with this label (``key=value``), as
        ``docker secret|config inspect`` gives them."""
        return self.inspect(self.lines(kind, "ls", "--quiet", "--filter", f"label={label}"), kind=kind)

    def stack_services(self, stack: str) -> list[dict[str, Any]]:
        """The stack's services as ``docker service inspect`` gives them."""
        ids = self.lines("service", "ls", "--quiet", "--filter", f"label=com.docker.stack.namespace={stack}")
        return self.inspect(ids, kind="service")
