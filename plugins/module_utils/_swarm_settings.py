"""The swarm-wide settings the swarm role keeps as the inventory says (node certificate
lifetime, autolock of the managers): what ``docker info`` shows of them on a manager, and what
must change. Pure; the role applies the changes with community.docker.docker_swarm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Go's duration syntax, as `docker swarm update --cert-expiry` takes it ("2160h", "1h30m").
DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")  # longest unit first
NANOSECONDS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "µs": 1e3, "ns": 1}
# swarmkit refuses node certificates shorter than an hour.
MIN_CERT_EXPIRY = 3600 * 10**9


def duration_ns(text: str) -> int:
    """Nanoseconds of a Go duration such as ``2160h`` or ``90h30m``; ValueError otherwise."""
    text = text.strip()
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{text!r} is not a duration such as 2160h or 720h30m")
    return round(sum(float(n) * NANOSECONDS[u] for n, u in parts))


def settings_of(swarm: Mapping[str, Any] | None) -> dict[str, Any]:
    """A manager's swarm state -> {cert_expiry_ns, autolock}; {} elsewhere (a worker does not
    see the cluster's spec). ``swarm`` is docker info's Swarm section, or host_state's reading
    of it, which keeps only these ("Settings")."""
    swarm = swarm or {}
    if "Settings" in swarm:
        return dict(swarm["Settings"] or {})
    spec = (swarm.get("Cluster") or {}).get("Spec") or {}
    if not spec:
        return {}
    return {
        "cert_expiry_ns": int((spec.get("CAConfig") or {}).get("NodeCertExpiry") or 0),
        "autolock": bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers")),
    }


def problems(cert_expiry: str | None) -> list[str]:
    """What is wrong with the wanted settings, one sentence each (the validate role names the host)."""
    if not cert_expiry:
        return []
    try:
        ns = duration_ns(cert_expiry)
    except ValueError as e:
        return [f"swarm_cert_expiry: {e}"]
    if ns < MIN_CERT_EXPIRY:
        return [f"swarm_cert_expiry: {cert_expiry!r} is shorter than the hour swarm allows"]
    return []


def changes(
    swarm: Mapping[str, Any] | None, cert_expiry: str | None, autolock: bool | None
) -> dict[str, Any]:
    """community.docker.docker_swarm's options for what differs from the manager's swarm state
    (settings_of) ({} when nothing does). An unset wish (empty or None) leaves that setting as
    it is."""
    current = settings_of(swarm)
    wanted: dict[str, Any] = {}
    if cert_expiry and duration_ns(cert_expiry) != current.get("cert_expiry_ns"):
        wanted["node_cert_expiry"] = duration_ns(cert_expiry)
    if autolock is not None and bool(autolock) != current.get("autolock"):
        wanted["autolock_managers"] = bool(autolock)
    return wanted
