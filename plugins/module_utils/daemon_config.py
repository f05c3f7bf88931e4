"""Key-by-key merge of Docker's daemon.json, so that several owners can share the file.

Admins and other roles (the NVIDIA runtime, for one) set keys of their own in daemon.json;
writing the whole file would drop them. Only the keys we are given are set, and nested maps
(``runtimes``, ``log-opts``) are merged the same way, one level at a time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any


class DaemonConfigError(ValueError):
    """daemon.json exists but cannot be used."""


def parse_daemon_config(text: str, path: str) -> dict[str, Any]:
    """Parse the text of daemon.json; an empty file counts as ``{}``."""
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
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


def render_daemon_config(config: Mapping[str, Any]) -> str:
    """The file's text: stable key order, so that equal configs give equal files."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"
