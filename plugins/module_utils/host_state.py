"""What a host has of what the collection sets up: packages, systemd units, its GPUs.

Read in one module call at the start of the Docker play, so that a host with everything in
place is asked nothing more (no apt cache update, no service call, no second nvidia-smi).
The commands are run through ``run``, the module's run_command; parsing is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Run = Callable[[list[str]], tuple[int, str, str]]
# The command module's rc for an executable that is not there (ENOENT), which the nvidia role
# reads as "no GPUs".
NOT_FOUND = 2


def installed_packages(dpkg_output: str, names: Sequence[str]) -> dict[str, str]:
    """Each name's installed version ("" when dpkg does not have it installed), from
    ``dpkg-query --show --showformat '${Package}\\t${db:Status-Abbrev}\\t${Version}\\n'``."""
    versions = dict.fromkeys(names, "")
    for line in dpkg_output.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].split(":")[0] in versions and parts[1].startswith("ii"):
            versions[parts[0].split(":")[0]] = parts[2]
    return versions


def unit_states(names: Sequence[str], enabled_output: str, active_output: str) -> dict[str, dict[str, bool]]:
    """Each unit's state from ``systemctl is-enabled`` and ``is-active`` over all of them (one
    line per unit, in order; a unit systemd does not know prints nothing or an error)."""
    enabled = enabled_output.splitlines()
    active = active_output.splitlines()

    def line(lines: list[str], i: int) -> str:
        return lines[i].strip() if i < len(lines) and len(lines) == len(names) else ""

    return {
        name: {"enabled": line(enabled, i) == "enabled", "active": line(active, i) == "active"}
        for i, name in enumerate(names)
    }


def read(run: Run, packages: Sequence[str], services: Sequence[str], nvidia_smi: str) -> dict:
    """The host's state: ``packages`` (name -> version), ``services`` (name -> enabled, active)
    and, when ``nvidia_smi`` names the tool, what ``nvidia-smi -L`` said (rc, stdout, stderr).
    A tool that is not there (no dpkg, no systemd) reads as nothing installed or running."""

    def output(argv: list[str]) -> tuple[int, str, str]:
        try:
            return run(argv)
        except OSError as e:
            return NOT_FOUND, "", str(e)

    state: dict = {"packages": {}, "services": {}}
    if packages:
        fmt = "${Package}\t${db:Status-Abbrev}\t${Version}\n"
        state["packages"] = installed_packages(
            output(["dpkg-query", "--show", "--showformat", fmt, *packages])[1], packages
        )
    if services:
        enabled = output(["systemctl", "is-enabled", *services])[1]
        active = output(["systemctl", "is-active", *services])[1]
        state["services"] = unit_states(services, enabled, active)
    if nvidia_smi:
        rc, out, err = output([nvidia_smi, "-L"])
        state["nvidia_smi"] = {"rc": rc, "stdout": out, "stderr": err}
    return state
