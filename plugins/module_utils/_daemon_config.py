"""Key-by-key merge of Docker's daemon.json, so that several owners can share the file.

Admins and other roles (the NVIDIA runtime, for one) set keys of their own in daemon.json;
writing the whole file would drop them. Only the keys we are given are set, and nested maps
(``runtimes``, ``log-opts``) are merged the same way, one level at a time. What an owner set
last time is recorded, so a key it no longer wants is removed, and a key it never set is kept.

A daemon.json that dockerd cannot read stops Docker on that host, so what we write is checked
first: every key we set against the documented daemon.json keys and their JSON types, and no
API socket on plain TCP without TLS.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

# Where docker_daemon_config records the keys each owner set (<owner>.json): its record_dir.
RECORD_DIR = "/var/lib/torchswarm/daemon-json"


class DaemonConfigError(ValueError):
    """daemon.json exists but cannot be used."""


# The documented daemon.json keys on Linux and the JSON type of each (dockerd reference,
# "Daemon configuration file"). dockerd refuses to start on an unknown key or a wrong type.
_KEYS_BY_TYPE: dict[type, tuple[str, ...]] = {
    list: (
        "allow-nondistributable-artifacts", "authorization-plugins", "default-address-pools", "dns",
        "dns-opts", "dns-search", "exec-opts", "hosts", "insecure-registries", "labels",
        "node-generic-resources", "registry-mirrors", "storage-opts",
    ),
    str: (
        "api-cors-header", "bip", "bridge", "cgroup-driver", "cgroup-parent", "containerd",
        "containerd-namespace", "containerd-plugins-namespace", "cpu-rt-period", "cpu-rt-runtime",
        "cri-containerd", "data-root", "default-cgroupns-mode", "default-gateway", "default-gateway-v6",
        "default-ipc-mode", "default-runtime", "default-shm-size", "exec-root", "fixed-cidr",
        "fixed-cidr-v6", "group", "host-gateway-ip", "init-path", "ip", "log-driver", "log-format",
        "log-level", "metrics-addr", "pidfile", "seccomp-profile", "storage-driver",
        "swarm-default-advertise-addr", "tlscacert", "tlscert", "tlskey", "userland-proxy-path",
        "userns-remap",
    ),
    bool: (
        "debug", "experimental", "icc", "init", "ip-forward", "ip-masq", "ip6tables", "iptables", "ipv6",
        "live-restore", "no-new-privileges", "raw-logs", "selinux-enabled", "tls", "tlsverify",
        "userland-proxy",
    ),
    int: (
        "max-concurrent-downloads", "max-concurrent-uploads", "max-download-attempts", "mtu",
        "network-control-plane-mtu", "oom-score-adjust", "shutdown-timeout",
    ),
    dict: ("builder", "default-ulimits", "features", "log-opts", "runtimes"),
}  # fmt: skip
DAEMON_KEYS = {key: kind for kind, keys in _KEYS_BY_TYPE.items() for key in keys}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a map"}
_PLAIN_TCP = re.compile(r"^tcp://", re.IGNORECASE)


def parse_daemon_config(data: bytes | str, path: str) -> dict[str, Any]:
    """Parse daemon.json's bytes (or text); an empty file counts as ``{}``."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DaemonConfigError(f"{path} is not UTF-8 text ({exc}); fix or remove it") from exc
    if not data.strip():
        return {}
    try:
        config = json.loads(data)
    except ValueError as exc:
        raise DaemonConfigError(f"{path} is not valid JSON ({exc}); fix or remove it") from exc
    if not isinstance(config, dict):
        raise DaemonConfigError(
            f"{path} holds a JSON {type(config).__name__}, not an object; fix or remove it"
        )
    return config


def merge_daemon_config(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``current`` with every key of ``wanted`` set; maps are merged, not replaced."""
    merged = copy.deepcopy(dict(current))
    for key, value in wanted.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_daemon_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def drop_unwanted(
    current: Mapping[str, Any], previous: Mapping[str, Any], wanted: Mapping[str, Any]
) -> dict[str, Any]:
    """Remove from ``current`` what an owner set last time (``previous``) and no longer wants.

    A key is removed only while it still holds the value the owner set: someone else's later
    value is theirs now. Maps are walked key by key, so ``runtimes.nvidia`` goes and another
    runtime stays; a map left empty by the removal goes too.
    """
    result = copy.deepcopy(dict(current))
    for key, was in previous.items():
        if key not in result:
            continue
        if key not in wanted:
            if result[key] == was:
                del result[key]
            elif isinstance(was, Mapping) and isinstance(result[key], Mapping):
                result[key] = drop_unwanted(result[key], was, {})
                if not result[key]:
                    del result[key]
        elif all(isinstance(v, Mapping) for v in (was, wanted[key], result[key])):
            result[key] = drop_unwanted(result[key], was, wanted[key])
    return result


def check_daemon_options(options: Mapping[str, Any], tlsverify: bool | None = None) -> list[str]:
    """What is wrong with keys to be written to daemon.json: one message per key.

    ``tlsverify``: whether the whole file (not only ``options``) turns on TLS client checks.
    """
    errors = []
    for key, value in options.items():
        kind = DAEMON_KEYS.get(key)
        if kind is None:
            errors.append(f"'{key}' is not a daemon.json key (dockerd would refuse to start)")
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            errors.append(f"'{key}' must be {_TYPE_NAMES[kind]}, not {json.dumps(value)}")
    hosts = options.get("hosts")
    if isinstance(hosts, list):
        tls = options.get("tlsverify") is True if tlsverify is None else tlsverify
        for entry in hosts:
            if isinstance(entry, str) and _PLAIN_TCP.match(entry) and not tls:
                errors.append(
                    f"hosts entry '{entry}' opens Docker's API on TCP without TLS (tlsverify), "
                    "which is root on this host for anyone who reaches it; use unix:// or "
                    "set tlsverify with tlscacert, tlscert and tlskey"
                )
    return errors


def render_daemon_config(config: Mapping[str, Any]) -> str:
    """The file's text: stable key order, so that equal configs give equal files."""
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def merged_config(
    current: Mapping[str, Any], previous: Mapping[str, Any], wanted: Mapping[str, Any]
) -> dict[str, Any]:
    """daemon.json after an owner that set ``previous`` last time sets ``wanted``."""
    return merge_daemon_config(drop_unwanted(current, previous, wanted), wanted)


def record_path(record_dir: str, owner: str) -> str:
    """The file that holds what ``owner`` set last time."""
    return f"{record_dir.rstrip('/')}/{owner}.json"


def unchanged(state: Mapping[str, Any] | None, owner: str, wanted: Mapping[str, Any]) -> bool:
    """Whether setting ``wanted`` as ``owner`` would leave daemon.json and the owner's record as
    they are, from what host_state read of them (``state``: the file's ``path`` and ``text``,
    each owner's record's text in ``records``; None or unreadable: not known, so False)."""
    if not state:
        return False
    try:
        current = parse_daemon_config(state.get("text") or "", state.get("path", "daemon.json"))
        previous = parse_daemon_config((state.get("records") or {}).get(owner) or "", owner)
    except DaemonConfigError:
        return False  # docker_daemon_config says what is wrong with it
    return merged_config(current, previous, wanted) == current and previous == wanted
