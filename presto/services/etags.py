"""Entity tags from versions, and the precondition writes check against them.

A restaurant's tag is its `version`. An item's tag covers what its representation shows:
its own version, the versions of every item in its modifier tree, and its restaurant's
version (for the currency). Every change to an item's fields or modifier list bumps that
item's version, so the tag changes exactly when the tree it heads does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime

from presto import __version__
from presto.services.menu_view import shown_available
from presto.storage.models import Item, Restaurant

# Checks a write's precondition (HTTP `If-Match`) against the current tag, computed only
# when the caller has a precondition to check; raises PreconditionFailedError on mismatch.
Precondition = Callable[[Callable[[], str]], None]


def restaurant_etag(restaurant: Restaurant) -> str:
    """The entity tag of a restaurant's own fields."""
    return f"r{restaurant.version}"


def menu_etag(restaurant: Restaurant) -> str:
    """The entity tag of a restaurant's whole menu document."""
    return menu_version_etag(restaurant.menu_version)


def menu_version_etag(menu_version: int) -> str:
    """The entity tag of the menu document at `menu_version`."""
    return f"m{menu_version}"


def item_etag(restaurant: Restaurant, item: Item) -> str:
    """The entity tag of an item with its modifier tree (`modifiers` must be attached)."""
    seen: dict[int, int] = {}
    stack = [item]
    while stack:
        node = stack.pop()
        if node.id in seen:
            continue
        # Availability follows schedules, so the tag changes when it does.
        seen[node.id] = node.version * 2 + shown_available(node)
        stack.extend(node.modifiers)
    tree = ";".join(f"{item_id}:{state}" for item_id, state in sorted(seen.items()))
    digest = hashlib.sha256(f"{restaurant.version}|{tree}".encode()).hexdigest()
    return f"i{item.version}-{digest[:16]}"


def encoded_etag(etag: str, coding: str) -> str:
    """The tag of a representation in a content coding: `"m5-1.0"` -> `"m5-1.0-gzip"`, as
    each encoding of a response needs its own strong tag (RFC 9110 8.8.3)."""
    if etag.endswith('"'):
        return f'{etag[:-1]}-{coding}"'
    return f"{etag}-{coding}"


def decoded_etag(etag: str, coding: str) -> str:
    """The tag of the identity representation whose `coding` tag is `etag` (the inverse of
    `encoded_etag`)."""
    suffix = f"-{coding}"
    if etag.endswith(f'{suffix}"'):
        return f'{etag[: -len(suffix) - 1]}"'
    return etag.removesuffix(suffix)


def menu_call_etag(restaurant: Restaurant, valid_until: datetime | None = None) -> str:
    """The entity tag of the menu call: the menu version, presto's version, whose releases
    may change the JSON shape, and, for a menu with schedules, the end of the period it
    shows (`-u` and the Unix time it next changes)."""
    tag = f"m{restaurant.menu_version}-{__version__}"
    return tag if valid_until is None else f"{tag}-u{int(valid_until.timestamp())}"


def current_menu_call_etag(
    restaurant: Restaurant, tags: Iterable[str | None], now: float
) -> str | None:
    """The one of `tags` that still names the menu call at Unix time `now`, if any.

    A menu version fixes the menu's schedules, so a tag of the current version is either
    without a period (the menu has no schedules) or valid until the instant it names: no
    item needs loading to tell.
    """
    current = menu_call_etag(restaurant)
    for tag in tags:
        if not tag:
            continue  # `W/""`: Werkzeug parses an empty weak tag as None
        # The gzip bytes' tag names the same version (`encoded_etag`).
        plain = tag.removesuffix("-gzip")
        if plain == current:
            return tag
        period = plain.removeprefix(f"{current}-u")
        if period != plain and period.isdigit() and now < int(period):
            return tag
    return None
