"""Published menus: menu call bodies stored with the menu version they show.

A menu is rendered when it changes (`presto.api.menu_publishing`) and its gzip bytes are
kept in `published_menu`, so that any worker on any host answers a menu it has not cached
with one indexed read of ready bytes instead of loading and serializing every item.

Never older than the version it is served as: `read_published` returns a row only if its
`menu_version` is the restaurant's current one, read in the same statement (one snapshot),
and, for a menu with schedules, only before its `valid_until`. A row is labelled with the
version read before its items were (so it shows that version or, if a write committed in
between, a later one, and then its label is never current again), and `store_published`
never replaces a newer version.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from zlib_ng import zlib_ng

from presto.services.restaurants import restaurant_not_found
from presto.storage.models import PublishedMenu, Restaurant

# Compression of published and cached bodies: paid once per menu version, so the highest,
# up to `LARGE_BODY` bytes; beyond, level 6 takes half the time for 10% more bytes (a
# 4.8 MB menu: 45 ms instead of 103 ms).
GZIP_LEVEL = 9
# zlib's window bits for a gzip stream (header and trailer).
GZIP_WBITS = 16 + zlib.MAX_WBITS
LARGE_BODY = 1024 * 1024
LARGE_BODY_GZIP_LEVEL = 6


def compress(body: bytes) -> bytes:
    """`body` gzip-compressed as presto stores it (no timestamp: the same body, the same
    bytes)."""
    level = GZIP_LEVEL if len(body) <= LARGE_BODY else LARGE_BODY_GZIP_LEVEL
    return gzip.compress(body, compresslevel=level, mtime=0)


def decompress(body_gzip: bytes) -> bytes:
    """The body of what `compress` made, by zlib-ng: header, inflate and CRC check in C,
    four times as fast as `gzip.decompress` on a menu."""
    return zlib_ng.decompress(body_gzip, wbits=GZIP_WBITS)


# The menu calls that are published, by their `(all, shape)`; filtered calls are not.
VARIANTS: dict[tuple[bool, str], str] = {
    (False, "nested"): "",
    (True, "nested"): "all",
    (False, "normalized"): "normalized",
    (True, "normalized"): "normalized,all",
}

# The exact query strings of those calls, as clients send them, by variant name; the async
# layer reads these from the published store without going through Flask.
QUERY_STRINGS: dict[str, str] = {
    "": "",
    "all=true": "all",
    "shape=normalized": "normalized",
    "shape=normalized&all=true": "normalized,all",
    "all=true&shape=normalized": "normalized,all",
}


@dataclass(frozen=True)
class Published:
    """One published menu call body."""

    menu_version: int
    etag: str
    # Unix time it was rendered at: with schedules, it shows the period around that moment.
    rendered_at: int
    # Unix time from which the body no longer shows the menu (schedules); None: never.
    valid_until: int | None
    body_gzip: bytes
    body_bytes: int
    # The uncompressed body when it was just rendered here (not stored: read back, None).
    plain: bytes | None = None

    @classmethod
    def of(
        cls,
        menu_version: int,
        etag: str,
        rendered_at: int,
        valid_until: int | None,
        body: bytes,
    ) -> Published:
        """The published form of a `body` rendered at `rendered_at`."""
        return cls(menu_version, etag, rendered_at, valid_until, compress(body), len(body), body)

    def body(self) -> bytes:
        """The uncompressed body."""
        return self.plain if self.plain is not None else decompress(self.body_gzip)


# The current version and the stored row in one statement (one snapshot); built once.
READ_PUBLISHED = (
    sa.select(
        Restaurant.menu_version,
        PublishedMenu.menu_version,
        PublishedMenu.etag,
        PublishedMenu.rendered_at,
        PublishedMenu.valid_until,
        PublishedMenu.body_gzip,
        PublishedMenu.body_bytes,
    )
    .select_from(Restaurant)
    .outerjoin(
        PublishedMenu,
        sa.and_(
            PublishedMenu.restaurant_id == Restaurant.id,
            PublishedMenu.variant == sa.bindparam("variant"),
        ),
    )
    .where(Restaurant.id == sa.bindparam("restaurant_id"))
)


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


def store_published(
    session: Session, restaurant_id: int, variant: str, published: Published
) -> None:
    """Insert or replace the restaurant's published `variant`, unless a newer menu version
    is stored already (a slower publisher of an older version finished last)."""
    values = {
        "restaurant_id": restaurant_id,
        "variant": variant,
        "menu_version": published.menu_version,
        "etag": published.etag,
        "rendered_at": published.rendered_at,
        "valid_until": published.valid_until,
        "body_gzip": published.body_gzip,
        "body_bytes": published.body_bytes,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(PublishedMenu).values(values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["restaurant_id", "variant"],
            set_={name: statement.excluded[name] for name in values if name != "variant"},
            where=PublishedMenu.menu_version <= statement.excluded.menu_version,
        )
    )


def unpublished_restaurants(session: Session) -> list[int]:
    """Ids of the restaurants whose default menu call has no current published body."""
    current = sa.select(PublishedMenu.restaurant_id).where(
        PublishedMenu.variant == VARIANTS[(False, "nested")],
        PublishedMenu.menu_version == Restaurant.menu_version,
        PublishedMenu.restaurant_id == Restaurant.id,
    )
    return list(
        session.scalars(sa.select(Restaurant.id).where(~current.exists()).order_by(Restaurant.id))
    )


def published_variants(session: Session, restaurant_id: int | None = None) -> dict[int, list[str]]:
    """Each restaurant (or just `restaurant_id`) with the variants besides the default one
    it has published: what `presto menus publish` renders again."""
    query = sa.select(Restaurant.id).order_by(Restaurant.id)
    if restaurant_id is not None:
        query = query.where(Restaurant.id == restaurant_id)
    found: dict[int, list[str]] = {rid: [] for rid in session.scalars(query)}
    if restaurant_id is not None and not found:
        raise restaurant_not_found(restaurant_id)
    rows = session.execute(
        sa.select(PublishedMenu.restaurant_id, PublishedMenu.variant)
        .where(PublishedMenu.variant != VARIANTS[(False, "nested")])
        .order_by(PublishedMenu.restaurant_id, PublishedMenu.variant)
    )
    for rid, variant in rows:
        if rid in found and variant in VARIANTS.values():
            found[rid].append(variant)
    return found
