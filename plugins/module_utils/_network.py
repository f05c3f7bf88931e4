"""Decide whether an existing overlay network can stay, or must be re-created.

Docker cannot change a network's driver, subnet or driver options in place: the only way is
to remove and re-create it, which fails (or strands tasks) while services are attached. The
``network`` role asks this function first, so it can stop with a clear message instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MTU_OPTION = "com.docker.network.driver.mtu"
ENCRYPTED_OPTION = "encrypted"


def wanted_driver_options(mtu: int | None, encrypted: bool) -> dict[str, str]:
    """The overlay driver options that express ``mtu`` and ``encrypted``, as Docker stores them."""
    options: dict[str, str] = {}
    if mtu:
        options[MTU_OPTION] = str(mtu)
    if encrypted:
        options[ENCRYPTED_OPTION] = ""
    return options


def recreate_reasons(
    current: Mapping[str, Any] | None,
    subnet: str | None,
    mtu: int | None,
    encrypted: bool,
) -> list[str]:
    """Return why ``current`` (a ``docker network inspect`` object) differs from what is wanted.

    An empty list means the network is fine as it is (or does not exist yet). An unset
    ``subnet`` or ``mtu`` leaves Docker's choice alone.
    """
    if not current:
        return []
    reasons = []
    driver = current.get("Driver")
    if driver != "overlay":
        reasons.append(f"driver is {driver}, wanted overlay")
    if current.get("Scope") not in (None, "swarm"):
        reasons.append(f"scope is {current.get('Scope')}, wanted swarm")
    if not current.get("Attachable"):
        reasons.append("it is not attachable")

    if subnet:
        configs = (current.get("IPAM") or {}).get("Config") or []
        subnets = [c.get("Subnet") for c in configs if c.get("Subnet")]
        if subnet not in subnets:
            reasons.append(f"subnet is {', '.join(subnets) or 'unset'}, wanted {subnet}")

    options = current.get("Options") or {}
    if mtu and options.get(MTU_OPTION) != str(mtu):
        reasons.append(f"MTU is {options.get(MTU_OPTION, 'the default')}, wanted {mtu}")
    is_encrypted = ENCRYPTED_OPTION in options
    if is_encrypted != bool(encrypted):
        reasons.append(
            "it is encrypted, wanted unencrypted" if is_encrypted else "it is not encrypted, wanted encrypted"
        )
    return reasons


def services_using(services: list[Mapping[str, Any]], network_id: str, network_name: str) -> list[str]:
    """Names of the services (``docker service inspect`` objects) attached to the network.

    A service spec names its networks by ID once created, but by name if it was given one.
    """
    names = []
    for service in services:
        spec = service.get("Spec") or {}
        attachments = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
        targets = {a.get("Target") for a in attachments}
        if network_id in targets or network_name in targets:
            names.append(spec.get("Name") or service.get("ID", "?"))
    return sorted(names)
