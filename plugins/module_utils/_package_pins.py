"""Package versions the inventory pins (docker_version, nvidia_toolkit_version): whether a value
is a version apt takes, the names apt installs it by, and the installed packages that differ.

A pin is a Debian version (``5:27.3.1-1~debian.12~bookworm``), or a prefix of one ending in
``*`` (``5:27.3.*``), as ``apt-get install docker-ce=5:27.3.*`` takes it. Pure: the docker and
nvidia roles' filters and the inventory check call it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# [epoch:]upstream[-revision]: digits first, then what Debian allows; a trailing * for a prefix.
VERSION = re.compile(r"^(?:\d+:)?\d[0-9A-Za-z.+~:-]*\*?$")
EXAMPLE = "5:27.3.1-1~debian.12~bookworm, or a prefix of one ending in * such as 5:27.3.*"


def problems(variable: str, version: object) -> list[str]:
    """Why ``version``, the value of ``variable``, is not a pin; [] when it is, or is unset."""
    if version in (None, ""):
        return []
    if not isinstance(version, str) or not VERSION.match(version):
        return [f"{variable}: {version!r} is not a package version such as {EXAMPLE}"]
    return []


def matches(installed: str, version: str) -> bool:
    """Whether the installed version is the pin (or starts with its prefix)."""
    if version.endswith("*"):
        return installed.startswith(version[:-1])
    return installed == version


def apt_names(packages: Iterable[str], pinned: Iterable[str], version: str) -> list[str]:
    """``packages`` as apt is asked for them: those in ``pinned`` at ``version`` (when set)."""
    pinned = set(pinned)
    return [f"{p}={version}" if version and p in pinned else p for p in packages]


def drift(installed: Mapping[str, str], pinned: Iterable[str], version: str) -> dict[str, str]:
    """The pinned packages installed at another version than ``version``: name -> installed
    version. Packages not installed are the install's business, not drift."""
    if not version:
        return {}
    return {p: installed[p] for p in pinned if installed.get(p) and not matches(installed[p], version)}


def upgrade_refusals(host: str, pins: Mapping[str, object]) -> list[str]:
    """Why ``host`` cannot be upgraded to ``pins`` (docker_version, nvidia_toolkit_version: what
    maintenance_upgrade installs): none is set, or one is not a version."""
    if not any(pins.values()):
        return [
            f"host {host}: maintenance_upgrade installs {' or '.join(pins)}, and neither is set for it; "
            "set the version to upgrade to"
        ]
    return [f"host {host}: {problem}" for name, value in pins.items() for problem in problems(name, value)]
