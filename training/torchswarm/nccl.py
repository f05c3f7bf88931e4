"""Which network NCCL chose on this host, from its own INFO lines, and a warning when it fell back
to sockets on a host with InfiniBand (or RoCE) devices: the job then runs, many times slower, and
nothing else says so.

The launcher asks NCCL for those lines (NCCL_DEBUG=INFO for its INIT and NET subsystems, into
files: NCCL_DEBUG_FILE) unless the user set NCCL_DEBUG, reads them while the round runs, and
prints NCCL's WARN lines, which go to those files too, into the log when the round ends. NCCL
says, per process::

    node3:412:412 [0] NCCL INFO NET/IB : No device found.
    node3:412:412 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.1.12<0>
    node3:412:530 [0] NCCL INFO Using network Socket

or ``NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB eth0:10.0.1.12<0>`` and ``Using network
IB``. A CPU job (gloo) writes none: nothing is said.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from collections.abc import Mapping

CHOSEN = re.compile(r"NCCL INFO Using network (?P<network>\S+)")
USING = re.compile(r"NCCL INFO NET/(?P<network>\w+)\s*: Using (?P<devices>[^;]+)")
INFINIBAND = "/sys/class/infiniband"
OURS = "TORCHSWARM_NCCL_FILE"  # the files asked for here: a user's NCCL_DEBUG_FILE is never read or removed


def environment(env: dict[str, str], scratch: str) -> None:
    """Ask NCCL for its INIT and NET lines in files below ``scratch``, unless the user asked for
    NCCL's lines themselves (NCCL_DEBUG set: they go where the user wants them)."""
    if "NCCL_DEBUG" in env:
        return
    env["NCCL_DEBUG"] = "INFO"
    env["NCCL_DEBUG_SUBSYS"] = "INIT,NET"
    env["NCCL_DEBUG_FILE"] = env[OURS] = os.path.join(scratch, "nccl.%h.%p")


def chosen(text: str) -> dict[str, str] | None:
    """The network NCCL uses and its devices, from its lines; None when it wrote none."""
    devices: dict[str, str] = {}
    network = ""
    for line in text.splitlines():
        if found := USING.search(line):
            network = found["network"]
            devices[network] = found["devices"].strip()
        elif found := CHOSEN.search(line):
            network = found["network"]
    if not network:
        return None
    return {"network": network, "devices": devices.get(network, "")}


def fell_back(found: dict[str, str], rdma_devices: list[str], ib_disabled: bool = False) -> str | None:
    """Why ``found`` is worth a warning: sockets on a host that has RDMA devices, unless the job
    turned InfiniBand off (NCCL_IB_DISABLE=1, job_nccl_ib_disable: the overlay carries only TCP)."""
    if found["network"] != "Socket" or not rdma_devices or ib_disabled:
        return None
    return (
        f"NCCL uses sockets ({found['devices'] or 'NET/Socket'}) though this host has "
        f"{', '.join(rdma_devices)} in {INFINIBAND}: every all-reduce crosses TCP. Give the "
        "container the devices (job_network_mode: host, the RDMA devices and memlock unlimited) or "
        "see NCCL_IB_HCA"
    )


class Check:
    """Once per round, when the workers have set NCCL up: read its lines, return the record to
    print. Inert when the launcher did not ask for the lines (environment())."""

    def __init__(self, env: Mapping[str, str], rdma_dir: str = INFINIBAND) -> None:
        self.pattern = (env.get(OURS) or "").replace("%h", "*").replace("%p", "*")
        self.ib_disabled = env.get("NCCL_IB_DISABLE", "0") not in ("", "0")
        self.rdma_dir = rdma_dir
        self.done = False

    def new_round(self) -> None:
        """An earlier round's processes' lines go: this round's NCCL may choose otherwise."""
        for path in glob.glob(self.pattern) if self.pattern else []:
            with contextlib.suppress(OSError):
                os.remove(path)
        self.done = False

    def _text(self) -> str:
        text = ""
        for path in sorted(glob.glob(self.pattern)) if self.pattern else []:
            with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as handle:
                text += handle.read()
        return text

    def warnings(self) -> list[str]:
        """NCCL's own WARN lines of this round: with its lines in files they would reach no log,
        so the launcher prints them when the round ends."""
        return [line.strip() for line in self._text().splitlines() if " NCCL WARN " in line]

    def record(self) -> dict | None:
        """The record, once, when NCCL has written which network it uses; None before and after."""
        if self.done or not self.pattern:
            return None
        found = chosen(self._text())
        if found is None:
            return None
        self.done = True
        try:
            rdma = sorted(os.listdir(self.rdma_dir))
        except OSError:
            rdma = []
        warning = fell_back(found, rdma, self.ib_disabled)
        return {"event": "nccl", **found, "warnings": [warning] if warning else []}
