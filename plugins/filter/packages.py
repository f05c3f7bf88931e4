"""Filters for the docker and nvidia roles' version pins; the logic lives in
module_utils/_package_pins.py."""

from __future__ import annotations

from ansible_collections.torchswarm.ddp.plugins.module_utils import _package_pins as package_pins


def apt_pinned(packages, pinned, version=""):
    return package_pins.apt_names(packages or [], pinned or [], version or "")


def package_drift(installed, pinned, version=""):
    return package_pins.drift(installed or {}, pinned or [], version or "")


class FilterModule:
    def filters(self):
        return {"apt_pinned": apt_pinned, "package_drift": package_drift}
