"""What differs between what is there and what is wanted, and the diff that shows only that.

Pure. As community.docker's DifferenceTracker: each difference is recorded once, as a path of
keys with its value before and after; the diff's two sides hold those values and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A key that one side does not have: left out of that side of the diff.
ABSENT = object()


@dataclass
class DifferenceTracker:
    items: list[tuple[tuple[str, ...], Any, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.items)

    def add(self, path: tuple[str, ...], before: Any, after: Any) -> None:
        self.items.append((path, before, after))

    def compare(self, before: Any, after: Any, path: tuple[str, ...] = ()) -> None:
        """Record each place where two values differ, key by key through nested dicts (a list
        is one value)."""
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            for key in sorted(set(before) | set(after), key=str):
                self.compare(before.get(key, ABSENT), after.get(key, ABSENT), (*path, key))
        elif before != after:
            self.add(path, before, after)

    def before_after(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The recorded differences as two nested dicts, the values before and after."""
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for path, old, new in self.items:
            _put(before, path, old)
            _put(after, path, new)
        return before, after


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    if value is ABSENT:
        return
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value
