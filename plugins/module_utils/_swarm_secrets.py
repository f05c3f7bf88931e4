"""Which swarm secrets hold a job's ``job_secrets``, and which to create or remove.

Pure: the values, and the job's swarm secrets as ``docker secret inspect`` gives them, in; a plan
out. Docker never gives a secret's value back, so each swarm secret carries a salted digest of
the value it holds: equal digests mean the value did not change and nothing is done. A new value
gets a new swarm secret (secrets are immutable), so a new name, so a new stack: a redeploy.
"""

from __future__ import annotations

import hashlib
import secrets as random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

JOB_LABEL = "io.torchswarm.job"
NAME_LABEL = "io.torchswarm.secret"
SALT_LABEL = "io.torchswarm.salt"
DIGEST_LABEL = "io.torchswarm.digest"
SALT_CHARS = 12


def secret_name(job: str, name: str, salt: str) -> str:
    """The swarm secret holding one value of job_secrets: a new value gets a new salt, so a new name."""
    return f"{job}_{name}_{salt[:SALT_CHARS]}"


def digest(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()


def new_salt() -> str:
    return random.token_hex(8)


@dataclass
class SecretPlan:
    refs: dict[str, str] = field(default_factory=dict)  # job_secrets name -> swarm secret name
    create: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (swarm name, name, labels)
    obsolete: list[str] = field(default_factory=list)  # the job's swarm secrets no stack needs now


def plan_secrets(
    job: str,
    values: Mapping[str, str],
    existing: Iterable[Mapping[str, Any]],
    salt: Callable[[], str] = new_salt,
) -> SecretPlan:
    plan = SecretPlan()
    mine = [s["Spec"] for s in existing if (s["Spec"].get("Labels") or {}).get(JOB_LABEL) == job]
    for name in sorted(values):
        value = str(values[name])
        for spec in mine:
            labels = spec.get("Labels") or {}
            if labels.get(NAME_LABEL) == name and labels.get(DIGEST_LABEL) == digest(
                labels.get(SALT_LABEL, ""), value
            ):
                plan.refs[name] = spec["Name"]
                break
        else:
            fresh = salt()
            plan.refs[name] = secret_name(job, name, fresh)
            labels = {JOB_LABEL: job, NAME_LABEL: name, SALT_LABEL: fresh, DIGEST_LABEL: digest(fresh, value)}
            plan.create.append((plan.refs[name], name, labels))
    wanted = set(plan.refs.values())
    plan.obsolete = sorted(spec["Name"] for spec in mine if spec["Name"] not in wanted)
    return plan
