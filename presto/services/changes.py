"""Applying a `PATCH`: only fields whose value differs count as changed, and a change bumps
the row's `version` (its entity tag)."""

from __future__ import annotations

from typing import Any, Protocol


class Versioned(Protocol):
    """A row with a version counter: an item or a restaurant."""

    version: int


def apply_changes(row: Versioned, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the fields of `changes` that differ on `row`, bump its version if any did, and
    return those."""
    changed = {name: value for name, value in changes.items() if getattr(row, name) != value}
    for name, value in changed.items():
        setattr(row, name, value)
    if changed:
        row.version += 1
    return changed
