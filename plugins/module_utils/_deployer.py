"""Deploy a training job's stack, with the swarm secrets and configs it refers to, when it
differs from what the swarm runs; remove it all on request.

The deployer compares what the swarm holds (a SwarmView) with what is wanted, records what it
does (``actions``) and what differs (a DifferenceTracker: the diff shows only that), and in
check mode changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._atomic_file import write_atomically
from ansible_collections.torchswarm.ddp.plugins.module_utils._differences import DifferenceTracker
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_checks import checked_job
from ansible_collections.torchswarm.ddp.plugins.module_utils._job_options import Job
from ansible_collections.torchswarm.ddp.plugins.module_utils._script_configs import (
    PATH_LABEL,
    ConfigPlan,
    config_data,
    plan_configs,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._stack import (
    RENDEZVOUS_SERVICE,
    Node,
    output_subdir,
    redacted,
    render_stack,
    service_hashes,
    snapshot_host_dir,
    stack_text,
    without_hash,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_secrets import (
    JOB_LABEL,
    SecretPlan,
    plan_secrets,
)
from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_view import SwarmView


@dataclass
class Wanted:
    """The rendered stack, its nodes in rank order, and the swarm secrets and configs it needs
    (with the values and texts of those to create)."""

    job: Job
    stack: dict[str, Any]
    nodes: list[Node]
    secrets: SecretPlan
    configs: ConfigPlan
    secret_values: Mapping[str, str]
    script_files: Mapping[str, str]


def wanted(
    view: SwarmView,
    options: Mapping[str, Any],
    nodes: list[Mapping[str, Any]],
    secrets: Mapping[str, str],
    script_files: Mapping[str, str],
    data_digest: str = "",
) -> Wanted:
    """The stack to deploy, checked in full against the swarm first (job_checks.StackError)."""
    secret_plan = plan_secrets(view.name, secrets, view.labelled("secret"))
    config_plan = plan_configs(view.name, script_files, view.labelled("config"))
    job = Job(name=view.name, data_digest=data_digest, **options)
    ranked = checked_job(job, nodes, view.node_gpus(), view.engine_version(), secrets, script_files)
    stack = render_stack(job, ranked, secret_plan.refs, config_plan.refs)
    return Wanted(job, stack, ranked, secret_plan, config_plan, secrets, script_files)


class StackDeployer:
    def __init__(self, view: SwarmView, check_mode: bool) -> None:
        self.view, self.cli, self.check_mode = view, view.cli, check_mode
        self.actions: list[str] = []
        self.differences = DifferenceTracker()

    def apply(self, wanted: Wanted) -> None:
        """Secrets and configs first (the stack refers to them), the ones no stack needs last."""
        for swarm_name, name, labels in wanted.secrets.create:
            self.actions.append(f"create swarm secret {swarm_name} for job_secrets {name}")
            self._create("secret", swarm_name, labels, str(wanted.secret_values[name]))
        for swarm_name, path in wanted.configs.create:
            self.actions.append(f"create swarm config {swarm_name} for job_script_src {path}")
            labels = {JOB_LABEL: self.view.name, PATH_LABEL: path}
            self._create("config", swarm_name, labels, config_data(wanted.script_files[path]))
        self._deploy(wanted.stack, wanted.job.with_registry_auth)
        self._remove("secret", wanted.secrets.obsolete)
        self._remove("config", wanted.configs.obsolete)

    def remove(self) -> None:
        """The stack, then every swarm secret and config of the job; snapshot volumes stay."""
        deployed = self.view.deployed_hashes()
        if deployed:
            self.actions.append(f"remove stack {self.view.name}; snapshot volumes stay")
            self._track(deployed, {}, {})
            if not self.check_mode:
                self.cli.run("stack", "rm", self.view.name)
                if os.path.exists(self.view.path):
                    os.remove(self.view.path)
        self._remove("config", plan_configs(self.view.name, {}, self.view.labelled("config")).obsolete)
        self._remove("secret", plan_secrets(self.view.name, {}, self.view.labelled("secret")).obsolete)

    def result(self, wanted: Wanted | None, diff: bool) -> dict[str, Any]:
        stack = wanted.stack if wanted else {}
        result: dict[str, Any] = {
            "changed": bool(self.actions),
            "stack": redacted(stack),
            "stack_file": self.view.path,
            "services": [
                f"{self.view.name}_{s}" for s in stack.get("services", {}) if s != RENDEZVOUS_SERVICE
            ],
            "nodes": [asdict(n) for n in wanted.nodes] if wanted else [],
            "snapshot_dirs": {n.name: snapshot_host_dir(wanted.job, n) for n in wanted.nodes}
            if wanted
            else {},
            "actions": self.actions,
        }
        if wanted:
            result["stack_hash"] = next(iter(service_hashes(stack).values()))
            result["output_subdir"] = output_subdir(result["stack_hash"])
            result["secrets"] = wanted.secrets.refs
        if diff and self.differences:
            before, after = self.differences.before_after()
            header = {"before_header": self.view.path, "after_header": self.view.path}
            result["diff"] = {"before": _diff_text(before), "after": _diff_text(after), **header}
        return result

    def _deploy(self, stack: dict[str, Any], with_registry_auth: bool) -> None:
        deployed, wanted_hashes = self.view.deployed_hashes(), service_hashes(stack)
        if deployed == wanted_hashes:
            return
        ranks = [name for name in stack["services"] if name != RENDEZVOUS_SERVICE]
        store = " with its rendezvous service" if len(ranks) < len(stack["services"]) else ""
        self.actions.append(f"deploy stack {self.view.name} ({len(ranks)} services){store}")
        self._track(deployed, wanted_hashes, stack)
        if self.check_mode:
            return
        os.makedirs(os.path.dirname(self.view.path), mode=0o700, exist_ok=True)
        write_atomically(self.view.path, stack_text(stack), mode=0o600)  # root only: job_env
        registry_auth = ["--with-registry-auth"] if with_registry_auth else []
        self.cli.run(
            "stack", "deploy", "--compose-file", self.view.path, "--prune", *registry_auth, self.view.name
        )

    def _track(self, deployed: Mapping[str, str], wanted_hashes: Mapping[str, str], stack: Mapping) -> None:
        """What the swarm runs against what is wanted: each service's stack hash, and what the stack
        file last deployed from this manager says against the new one (job_env values hidden)."""
        self.differences.compare(dict(deployed), dict(wanted_hashes), ("stack_hash",))
        before = without_hash(self.view.deployed_stack())
        self.differences.compare(redacted(before), redacted(without_hash(stack), before))

    def _create(self, kind: str, swarm_name: str, labels: Mapping[str, str], data: str) -> None:
        """``docker secret|config create`` with labels, the value on stdin (never in argv)."""
        if not self.check_mode:
            label_args = [a for k, v in sorted(labels.items()) for a in ("--label", f"{k}={v}")]
            self.cli.run(kind, "create", *label_args, swarm_name, "-", data=data)

    def _remove(self, kind: str, names: list[str]) -> None:
        for swarm_name in names:
            self.actions.append(f"remove swarm {kind} {swarm_name}")
            if not self.check_mode:
                self.cli.run(kind, "rm", swarm_name)


def _diff_text(side: Mapping[str, Any]) -> str:
    """One side of the diff as a person reads it (the stack file itself doubles every $)."""
    return json.dumps(side, indent=2, sort_keys=True, ensure_ascii=False) + "\n" if side else ""
