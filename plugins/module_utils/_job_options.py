"""The training job's options, declared once.

``JOB_OPTIONS`` is the one place each option is written: the ``training_stack`` module takes
them as its ``job`` option (its argument spec and, through the ``torchswarm.ddp.job`` doc
fragment, its documentation), the job role passes the variables ``job_<option>`` that are set
(the ``torchswarm.ddp.job_options`` lookup), the validate play checks those variables, and
``Job`` is made from them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import field, make_dataclass
from typing import Any

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

# The job role's variable for option X is job_X.
ROLE_PREFIX = "job_"
# The job's (and its stack's) name when none is given, as the job role's job_name defaults to.
JOB_NAME = "ddp"

JOB_OPTIONS: dict[str, dict[str, Any]] = {
    "image": {
        "type": "str",
        "required": True,
        "description": "The training image, as every node's engine knows it.",
    },
    "epochs": {"type": "int", "default": 10, "description": "Total epochs, the trainer's first argument."},
    "snapshot_every": {
        "type": "int",
        "default": 2,
        "description": "Snapshot interval in epochs, the trainer's second argument.",
    },
    "batch_size": {"type": "int", "default": 32, "description": "Batch size per process (C(--batch_size))."},
    "script": {
        "type": "str",
        "default": "training_code.py",
        "description": (
            "The script torchrun runs, in the image's working directory (with job_script_src, one "
            "of its files)."
        ),
    },
    "trainer_args": {
        "type": "list",
        "elements": "str",
        "default": [],
        "description": "Extra arguments after the guide's, for example C([--model, gpt]).",
    },
    "script_args": {
        "type": "list",
        "elements": "str",
        "description": (
            "The script's whole argument list, in place of the trainer's (epochs, snapshot interval, "
            "C(--batch_size) and trainer_args); for scripts other than the trainer, such as the "
            "preflight's C(allreduce_check.py)."
        ),
    },
    "env": {
        "type": "dict",
        "default": {},
        "description": [
            "Environment for every rank, for example C(NCCL_DEBUG=INFO). Values reach the task byte "
            "for byte (a C($) is not interpolated).",
            "Not for secrets (use job_secrets): values are shown as C(<hidden>) in results, diffs and "
            "logged arguments, but kept in the stack file on the manager.",
        ],
    },
    "nccl_ib_disable": {
        "type": "bool",
        "description": [
            "C(NCCL_IB_DISABLE) for every rank, the guide's fix for NCCL hanging on InfiniBand it "
            "cannot use; env overrides it.",
            "Default, V(true) on the overlay network (it carries only TCP) and NCCL's own choice on "
            "the host network.",
        ],
    },
    "memlock": {
        "type": "str",
        "description": [
            "Locked-memory limit of every rank (the C(memlock) ulimit), which NCCL needs for "
            "InfiniBand and RoCE buffers. V(unlimited), a size such as V(64g), or an empty string "
            "for Docker's default.",
            "Default, V(unlimited) on the host network and Docker's default on the overlay network, "
            "where NCCL uses only sockets.",
        ],
    },
    "master_port": {
        "type": "int",
        "default": 12355,
        "description": "The rendezvous port on rank 0 (C(--master_port)).",
    },
    "master_addr": {
        "type": "str",
        "default": "",
        "description": (
            "The rendezvous address. Empty, rank 0's service name on the overlay network, or rank "
            "0's address on the host network."
        ),
    },
    "network": {
        "type": "str",
        "default": "ddp-net",
        "description": "The attachable overlay network the services join.",
    },
    "network_mode": {
        "type": "str",
        "choices": ["overlay", "host"],
        "default": "overlay",
        "description": (
            "V(overlay) joins the network; V(host) runs on the hosts' network stacks, for NCCL over "
            "InfiniBand or RoCE NICs."
        ),
    },
    "subnet": {
        "type": "str",
        "default": "",
        "description": (
            "The overlay's subnet; the trainer picks the interface in it for NCCL and Gloo "
            "(C(TORCHSWARM_SUBNET))."
        ),
    },
    "snapshot_volume": {
        "type": "str",
        "default": "",
        "description": (
            "The named volume for snapshots and metrics on each node. Empty, C(<job name>-snapshots)."
        ),
    },
    "mounts": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "description": [
            "What else every rank sees besides the image: host paths (a dataset on each host's NVMe, "
            "a shared filesystem the hosts mount), named volumes (NFS through Docker's own C(local) "
            "driver, declared in the stack) and sized tmpfs scratch space.",
            "A host path is checked on every training host before any host changes: missing, not a "
            "directory, not readable, or (V(read_only=false)) not writable stops the run naming the "
            "host and the path. A target inside or above C(/workspace), C(/snapshots), C(/dev/shm), "
            "C(/run/secrets) or another mount's target is refused.",
        ],
        "options": {
            "type": {
                "type": "str",
                "choices": ["bind", "volume", "tmpfs"],
                "default": "bind",
                "description": "V(bind), a host path; V(volume), a named volume; V(tmpfs), memory.",
            },
            "source": {
                "type": "str",
                "description": [
                    "V(bind), the absolute path on every training host; V(volume), the volume's name "
                    "(a volume of that name that a node already has is used as it is).",
                    "None for V(tmpfs).",
                ],
            },
            "target": {
                "type": "str",
                "required": True,
                "description": "The absolute path inside every rank.",
            },
            "read_only": {
                "type": "bool",
                "description": (
                    "Mounted read-only. Default V(true) for V(bind) and V(volume); a V(tmpfs) is writable."
                ),
            },
            "driver_opts": {
                "type": "dict",
                "default": {},
                "description": [
                    "V(volume) only: the C(local) driver's options, with which each node creates the "
                    "volume on first use. NFS: C({type: nfs, o: 'addr=10.0.0.5,nfsvers=4', "
                    "device: ':/export/data'}).",
                ],
            },
            "size": {
                "type": "str",
                "description": "V(tmpfs) only, and required there: its size, for example V(8g).",
            },
        },
    },
    "data_dir": {
        "type": "str",
        "default": "",
        "description": [
            "With job_data_src (a dataset on the controller, staged on every training host), where "
            "each host keeps it. Empty, C(/var/lib/torchswarm/data/<job name>). A directory that holds "
            "files no staging put there is never replaced.",
        ],
    },
    "data_target": {
        "type": "str",
        "default": "/data",
        "description": (
            "With job_data_src, where every rank sees the staged dataset, read-only; "
            "C(TORCHSWARM_DATA_DIR) names it (the bundled trainer's C(--data))."
        ),
    },
    "snapshot_dir": {
        "type": "str",
        "default": "",
        "description": [
            "A host path for the snapshots in place of the named volume: a filesystem the hosts share "
            "(mounted by themselves) or local NVMe. Each node writes under "
            "C(<snapshot_dir>/<job name>/<inventory host>/). It must exist and be writable on every "
            "training host (checked before any host changes).",
        ],
    },
    "snapshot_keep": {
        "type": "int",
        "default": 2,
        "description": (
            "How many of its newest snapshots each node keeps; older ones are removed. A newest "
            "snapshot that cannot be read is skipped at start, with a line saying so, for the one "
            "before it."
        ),
    },
    "shm_size": {
        "type": "str",
        "default": "1g",
        "description": "Size of the C(/dev/shm) tmpfs, for example V(1g).",
    },
    "cpus": {
        "type": "float",
        "description": (
            "CPUs each training host's task may use, Docker's CPU limit (V(1.5): one and a half); "
            "unset, no limit. For a host that also does other work: it keeps that work, and the "
            "host's Docker engine and swarm agent, responsive while the ranks keep every CPU busy."
        ),
    },
    "restart_delay": {
        "type": "str",
        "default": "10s",
        "description": "Delay before the swarm restarts a failed task.",
    },
    "restart_max_attempts": {
        "type": "int",
        "default": 30,
        "description": (
            "How many times the swarm restarts a failed task before giving up. A lost node makes "
            "every torchrun fail and restart, and ranks that start before node rank 0 is back fail "
            "again: the default covers a few minutes of that."
        ),
    },
    "start_attempts": {
        "type": "int",
        "default": 3,
        "description": [
            "How many times in a row a host's ranks may fail before their first training step (a "
            "missing module, a bad argument) before the job fails with their error instead of being "
            "restarted again. A step is what C(torchswarm.step) or C(torchswarm.report) says (the "
            "bundled trainer calls them); a script that calls neither counts as started after 5 "
            "minutes. A script that is not in the image fails the job at once.",
        ],
    },
    "stall_timeout": {
        "type": "int",
        "default": 600,
        "description": [
            "Seconds without a training step on a host after which the job counts as stalled (a rank "
            "stuck in a collective, a deadlocked DataLoader worker, a filesystem that stopped "
            "answering): every worker prints its Python stacks into the logs, and the round is ended "
            "and re-formed from the newest snapshot, as after a lost host. A round's first step may "
            "take twice as long. A step is what C(torchswarm.step) or C(torchswarm.report) says; a "
            "host that never reported one is never judged. V(0) turns the watchdog off.",
        ],
    },
    "stall_restarts": {
        "type": "int",
        "default": 3,
        "description": (
            "How many stalls in a row the job re-forms from; the next fails it, with the reason. A "
            "round that trained for as long as the stall timeout "
            "starts the count again."
        ),
    },
    "stop_grace_period": {
        "type": "str",
        "default": "60s",
        "description": "Time between SIGTERM (the trainer snapshots) and SIGKILL.",
    },
    "min_nodes": {
        "type": "int",
        "description": [
            "On the overlay the job is elastic; it trains in rounds over the hosts that are there, "
            "agreed in a rendezvous service on the managers. This many hosts are enough to go on.",
            "Default N-1 for 3 or more training hosts, else N.",
        ],
    },
    "peer_timeout": {
        "type": "int",
        "default": 30,
        "description": (
            "Seconds without a heartbeat after which a host counts as lost and the others re-form "
            "without it (on the overlay)."
        ),
    },
    "with_registry_auth": {
        "type": "bool",
        "default": False,
        "description": "Pass the manager's registry login to the nodes (C(--with-registry-auth)).",
    },
}


def _spec(option: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: ({n: _spec(o) for n, o in v.items()} if k == "options" else v)
        for k, v in option.items()
        if k != "description"
    }


def argument_spec(prefix: str = "") -> dict[str, dict[str, Any]]:
    """JOB_OPTIONS as an argument spec; with ``prefix``, under those names (the role's variables)."""
    return {prefix + name: _spec(o) for name, o in JOB_OPTIONS.items()}


def documented(options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Options as module documentation writes them: an option's own options are its suboptions."""
    return {
        name: {
            ("suboptions" if k == "options" else k): (documented(v) if k == "options" else v)
            for k, v in o.items()
        }
        for name, o in options.items()
    }


def from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
    """The job options among a host's variables (``job_<option>``); a null one is unset."""
    found = {name: variables.get(ROLE_PREFIX + name) for name in JOB_OPTIONS}
    return {name: value for name, value in found.items() if value is not None}


def validated(options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Job options with their types checked and the defaults of the rest filled in, as the module
    takes them, and the errors, each naming the role's variable (job_<option>); none is required."""
    spec = {name: {**o, "required": False} for name, o in argument_spec(ROLE_PREFIX).items()}
    result = ArgumentSpecValidator(spec).validate({ROLE_PREFIX + k: v for k, v in options.items()})
    values = {k.removeprefix(ROLE_PREFIX): v for k, v in result.validated_parameters.items()}
    messages = [str(error) for error in result.errors]
    # Ansible turns a string into a list of strings by its commas: "--model gpt" would be one
    # argument, which the script refuses only after the deploy.
    messages += [
        f"{ROLE_PREFIX}{name} is a string ({value!r}); give a list, one item per argument: "
        f"[{', '.join(value.split())}]"
        for name, value in options.items()
        if isinstance(value, str) and JOB_OPTIONS.get(name, {}).get("elements") == "str"
    ]
    # A list's element that is not a dict is reported twice, once without the option's name.
    return values, [m for m in messages if not any(m != other and m in other for other in messages)]


def data_host_dir(name: str, data_dir: str = "") -> str:
    """Where each training host keeps the job's staged dataset (job_data_dir, by default under
    /var/lib/torchswarm/data)."""
    return data_dir or f"/var/lib/torchswarm/data/{name}"


def _field(option: Mapping[str, Any]):
    # Fields for make_dataclass, which pylint does not see them go to.
    # pylint: disable=invalid-field-call
    if option.get("required"):
        return field()
    default = option.get("default")
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default))
    return field(default=default)


_JobOptions = make_dataclass(
    "_JobOptions",
    # The stack's name, and the digest of the dataset staged from job_data_src ("": none), which
    # are not options of the job but what the job role derives.
    [("name", str, field(default=JOB_NAME)), ("data_digest", str, field(default=""))]
    + [(name, Any, _field(o)) for name, o in JOB_OPTIONS.items()],
    frozen=True,
    kw_only=True,
)


class Job(_JobOptions):
    """A job: its name (the stack's), its staged dataset's digest and every option of
    JOB_OPTIONS, defaults filled in."""

    @property
    def volume(self) -> str:
        return self.snapshot_volume or f"{self.name}-snapshots"

    @property
    def data_host_dir(self) -> str:
        return data_host_dir(self.name, self.data_dir)

    @property
    def elastic(self) -> bool:
        """Rounds over the hosts that are there need the rendezvous service's name, which only
        the overlay resolves; on the host network the job is static (every host, always)."""
        return self.network_mode == "overlay"

    def needed_nodes(self, nodes: int) -> int:
        if self.min_nodes is not None:
            return self.min_nodes
        return nodes - 1 if nodes >= 3 else nodes
