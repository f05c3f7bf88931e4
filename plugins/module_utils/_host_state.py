"""What a host has of what the collection sets up: packages, systemd units, its GPUs, its
Docker engine's swarm state, and its daemon.json with what each owner set in it.

With ``facts``, also the few facts the roles use, named as ``setup`` names them: the hostname,
the address of the default route, the distribution, the architecture, the service manager.

Read in one module call at the start of the run (the validate role), so that a host with everything in
place is asked nothing more (no apt cache update, no service call, no second nvidia-smi, no
second read of its swarm state, no daemon.json step that would change nothing). The commands
are run through ``run``, the module's run_command; parsing is pure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

from ansible_collections.torchswarm.ddp.plugins.module_utils import _swarm_settings as swarm_settings

Run = Callable[[list[str]], tuple[int, str, str]]
# The command module's rc for an executable that is not there (ENOENT), which the nvidia role
# reads as "no GPUs".
NOT_FOUND = 2


def tolerant(run: Run) -> Run:
    """``run``, with a tool that is not there read as rc NOT_FOUND and no output."""

    def output(argv: list[str]) -> tuple[int, str, str]:
        try:
            return run(argv)
        except OSError as e:
            return NOT_FOUND, "", str(e)

    return output


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


# What the swarm role reads of docker info's Swarm; of a manager's cluster spec, only the settings
# it keeps (swarm_settings.settings_of), as "Settings".
SWARM_KEYS = ("NodeID", "NodeAddr", "LocalNodeState", "ControlAvailable", "Error", "RemoteManagers")


def swarm_state(rc: int, docker_info_swarm: str) -> dict | None:
    """The engine's swarm state from ``docker info --format '{{json .Swarm}}'`` (SWARM_KEYS);
    None when no engine answered."""
    if rc != 0:
        return None
    try:
        swarm = json.loads(docker_info_swarm)
    except ValueError:
        return None
    # Docker 26's CLI with no engine to ask prints an empty Swarm, and exits 0.
    if not isinstance(swarm, dict) or not swarm.get("LocalNodeState"):
        return None
    return {**{k: swarm[k] for k in SWARM_KEYS if k in swarm}, "Settings": swarm_settings.settings_of(swarm)}


IMAGE_LS = ["docker", "image", "ls", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]


def image_ids(rc: int, docker_image_ls: str) -> dict[str, str] | None:
    """Each tagged image's ID by ``name:tag`` as ``docker image ls`` prints it (IMAGE_LS); None
    when no engine answered. Untagged images are left out."""
    if rc != 0:
        return None
    ids = {}
    for line in docker_image_ls.splitlines():
        name, _unused, image_id = line.strip().rpartition(" ")
        if name and "<none>" not in name and image_id.startswith("sha256:"):
            ids[name] = image_id
    return ids


def default_route_address(rc: int, route_get: str) -> str:
    """The source address of the default IPv4 route (``ip -4 route get 8.8.8.8``, as setup reads
    its default_ipv4); "" when there is none."""
    words = route_get.split() if rc == 0 else []
    if "src" in words[:-1]:
        return words[words.index("src") + 1]
    return ""


# setup's spelling of the distributions whose os-release ID it capitalises otherwise.
DISTRIBUTIONS = {"debian": "Debian", "ubuntu": "Ubuntu"}


def os_release(text: str) -> dict[str, str]:
    """``distribution`` and ``distribution_release`` from /etc/os-release's ID and
    VERSION_CODENAME, as setup has them for Debian and Ubuntu ("" when not given)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("'\"")
    os_id = fields.get("ID", "")
    return {
        "distribution": DISTRIBUTIONS.get(os_id, os_id.capitalize()),
        "distribution_release": fields.get("VERSION_CODENAME", ""),
    }


def system_facts(run: Run, uname: os.uname_result, os_release_text: str, systemd: bool) -> dict:
    """The facts the roles read, with setup's names: nodename, default_ipv4.address,
    distribution, distribution_release, architecture, and service_mgr where systemd runs."""
    route = tolerant(run)(["ip", "-4", "route", "get", "8.8.8.8"])
    facts = {
        "nodename": uname.nodename,
        "architecture": uname.machine,
        "default_ipv4": {"address": default_route_address(*route[:2])},
        **os_release(os_release_text),
    }
    if systemd:
        facts["service_mgr"] = "systemd"
    return facts


# daemon.json and the records are a few hundred bytes; more than this is not read (and then
# counts as unknown).
FILE_LIMIT = 1 << 20


def _text(path: str) -> str | None:
    """A small file's text; None when it does not exist. Raises OSError or ValueError when it
    cannot be read whole as UTF-8."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(FILE_LIMIT + 1)
    except FileNotFoundError:
        return None
    if len(text) > FILE_LIMIT:
        raise ValueError(f"{path} is larger than {FILE_LIMIT} bytes")
    return text


def daemon_config_files(path: str, record_dir: str) -> dict | None:
    """daemon.json's ``text`` (None: no file) and each owner's record in ``record_dir``
    (docker_daemon_config's), as ``records``; None when one of them cannot be read."""
    try:
        names = sorted(n for n in os.listdir(record_dir) if n.endswith(".json"))
    except FileNotFoundError:
        names = []
    except OSError:
        return None
    try:
        records = {name[: -len(".json")]: _text(os.path.join(record_dir, name)) for name in names}
        return {"path": path, "text": _text(path), "records": records}
    except (OSError, ValueError):
        return None


def path_states(paths: Sequence[str]) -> dict[str, dict[str, bool]]:
    """For each path: whether it exists, is a directory, and this process may read (and list) it
    and write in it; what a bind mount of it needs."""
    states = {}
    for path in paths:
        directory = os.path.isdir(path)
        states[path] = {
            "exists": os.path.exists(path),
            "directory": directory,
            "readable": os.access(path, os.R_OK | (os.X_OK if directory else 0)),
            "writable": os.access(path, os.W_OK | (os.X_OK if directory else 0)),
        }
    return states


def read_system_facts(run: Run) -> dict:
    """system_facts of this host."""
    text = ""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = _text(path)
        except (OSError, ValueError):
            text = None
        if text is not None:
            break
    return system_facts(run, os.uname(), text or "", os.path.isdir("/run/systemd/system"))


def read(
    run: Run,
    packages: Sequence[str],
    services: Sequence[str],
    nvidia_smi: str,
    engine: bool = False,
    daemon_config: str = "",
    record_dir: str = "",
    paths: Sequence[str] = (),
) -> dict:
    """The host's state: ``packages`` (name -> version), ``services`` (name -> enabled, active),
    when ``nvidia_smi`` names the tool what ``nvidia-smi -L`` said (rc, stdout, stderr), with
    ``engine`` the Docker engine's ``swarm`` state and its tagged ``images`` (each None when no
    engine answers), and with
    ``daemon_config`` (its path) daemon.json and the owners' records in ``record_dir``. A tool
    that is not there (no dpkg, no systemd, no docker) reads as nothing installed or running."""

    output = tolerant(run)
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
    if engine:
        rc, out, _unused = output(["docker", "info", "--format", "{{json .Swarm}}"])
        state["swarm"] = swarm_state(rc, out)
        state["images"] = image_ids(*output(IMAGE_LS)[:2]) if state["swarm"] is not None else None
    if daemon_config:
        state["daemon_config"] = daemon_config_files(daemon_config, record_dir)
    if paths:
        state["paths"] = path_states(paths)
    return state
