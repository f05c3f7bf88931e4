"""A user's script shipped without a Dockerfile (job_script_src): swarm configs, one per file,
placed in the image's working directory in every rank's task.

Pure: the files (relative path -> text) and the job's swarm configs as ``docker config inspect``
gives them, in; names and a plan out. A config's name holds the digest of its path and text, so
a changed file is a new config, so a new stack: the job redeploys. Configs are immutable.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.torchswarm.ddp.plugins.module_utils._swarm_secrets import JOB_LABEL

PATH_LABEL = "io.torchswarm.script-file"


def config_name(job: str, path: str, text: str) -> str:
    digest = hashlib.sha256(f"{path}\0{text}".encode()).hexdigest()[:16]
    return f"{job}_script_{digest}"


def config_data(text: str) -> str:
    """What the config holds: a swarm config cannot be empty, so an empty file (an
    ``__init__.py``) arrives as one newline."""
    return text or "\n"


def check_script_files(files: Mapping[str, str], script: str) -> list[str]:
    """Paths that would land outside the working directory, and a script that is not shipped."""
    errors = []
    for path in sorted(files):
        clean = posixpath.normpath(path)
        if path.startswith("/") or clean != path or clean.startswith("..") or not clean:
            errors.append(
                f"job_script_src: '{path}' is not a plain relative path below the working directory"
            )
    if files and script not in files:
        errors.append(
            f"job_script '{script}' is not among the files of job_script_src ({', '.join(sorted(files))}); "
            "set job_script to the one to run"
        )
    return errors


@dataclass
class ConfigPlan:
    refs: dict[str, str] = field(default_factory=dict)  # relative path -> swarm config name
    create: list[tuple[str, str]] = field(default_factory=list)  # (swarm config name, relative path)
    obsolete: list[str] = field(default_factory=list)  # the job's configs no stack needs now


def plan_configs(job: str, files: Mapping[str, str], existing: Iterable[Mapping[str, Any]]) -> ConfigPlan:
    mine = {c["Spec"]["Name"] for c in existing if (c["Spec"].get("Labels") or {}).get(JOB_LABEL) == job}
    plan = ConfigPlan(refs={path: config_name(job, path, files[path]) for path in sorted(files)})
    plan.create = [(name, path) for path, name in plan.refs.items() if name not in mine]
    plan.obsolete = sorted(mine - set(plan.refs.values()))
    return plan
