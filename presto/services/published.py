"""Published menus: when a stored menu call body may answer.

A menu is rendered when it changes (`presto.menus.publishing`) and its gzip bytes are kept
in `published_menu` (`presto.storage.published_menus`), so that any worker on any host
answers a menu it has not cached with one indexed read of ready bytes instead of loading
and serializing every item.

Never older than the version it is served as: `read_published` returns a row only if its
`menu_version` is the restaurant's current one, read in the same statement (one snapshot),
and, for a menu with schedules, only before its `valid_until`. A row is labelled with the
version read before its items were (so it shows that version or, if a write committed in
between, a later one, and then its label is never current again), and `store_published`
never replaces a newer version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from presto.services.restaurants import restaurant_not_found
from presto.storage import published_menus
from presto.storage.published_menus import READ_PUBLISHED, Published


def read_published(
    connection: Connection, restaurant_id: int, variant: str, now: float
) -> Published | None:
    """The restaurant's published `variant` if it shows the current menu at Unix time
    `now`; None if it must be rendered. Raises NotFoundError for an unknown restaurant."""
    row = connection.execute(
        READ_PUBLISHED, {"restaurant_id": restaurant_id, "variant": variant}
    ).one_or_none()
    return current_published(row, restaurant_id, now)


def current_published(
    row: Sequence[Any] | None, restaurant_id: int, now: float
) -> Published | None:
    """The published body in a row of `READ_PUBLISHED`, if it shows the current menu at
    Unix time `now`. Raises NotFoundError when there is no row (no such restaurant)."""
    if row is None:
        raise restaurant_not_found(restaurant_id)
    current, version, etag, rendered_at, valid_until, body_gzip, body_bytes = row
    if version != current:
        return None
    # A menu with schedules shows one period: from its rendering (or earlier) until then.
    if valid_until is not None and not rendered_at <= now < valid_until:
        return None
    return Published(version, etag, rendered_at, valid_until, bytes(body_gzip), body_bytes)


def published_variants(session: Session, restaurant_id: int | None = None) -> dict[int, list[str]]:
    """Each restaurant (or just `restaurant_id`) with the variants besides the default one
    it has published: what `presto menus publish` renders again. Raises NotFoundError for
    an unknown `restaurant_id`."""
    found = published_menus.published_variants(session, restaurant_id)
    if restaurant_id is not None and not found:
        raise restaurant_not_found(restaurant_id)
    return found
