"""The `published_menu` table's rows: a menu call's gzip body stored with the menu version
it shows, the statement that reads one beside the restaurant's current version, the upsert
that never replaces a newer version, and the listings `presto menus publish` works from.

When a stored row may answer is the rule of `presto.services.published`; which menu calls
are published, and under which query strings, is `presto.menus.representation`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from presto.storage.compression import compress, decompress
from presto.storage.models import PublishedMenu, Restaurant

# The `variant` of the default menu call (no query string), published on every change.
DEFAULT_VARIANT = ""
# Every variant that is published: the default, `all`, `normalized` and both.
VARIANT_NAMES = (DEFAULT_VARIANT, "all", "normalized", "normalized,all")


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


# `READ_PUBLISHED` for several menus at once as a PostgreSQL function, for reads behind a
# transaction-mode pooler: there a statement cannot stay prepared on a server connection,
# so each read would be parsed and planned anew (some 100 us of the server's CPU, as much
# as the rest of the read), and each statement is a transaction the pooler hands a server
# connection and takes it back (some 100 us more of its and the server's CPU). PL/pgSQL
# keeps the plan of the query inside a function on each server connection, the call
# itself plans in a few microseconds, and one call answers every read waiting for it
# (`presto.serving.published_reads.BatchedPublishedReads`). Created with the tables
# (`create_schema`) and by the migration of that name. For the n-th restaurant id and
# variant it returns `n` and then what `READ_PUBLISHED` returns for them, in the same
# order and types (tests/test_published_reads.py checks both agree); no row for an
# unknown restaurant.
READ_PUBLISHED_FUNCTION = "presto_read_published"
# The call: `restaurant_ids` and `variants`, arrays of the same length.
READ_PUBLISHED_MANY: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(
    getattr(sa.func, READ_PUBLISHED_FUNCTION)(
        sa.bindparam("restaurant_ids", type_=sa.ARRAY(sa.Integer)),
        sa.bindparam("variants", type_=sa.ARRAY(sa.String)),
    )
)
CREATE_FUNCTION_SQL = f"""
    CREATE OR REPLACE FUNCTION {READ_PUBLISHED_FUNCTION}(
        wanted_restaurant_ids integer[], wanted_variants varchar[]
    )
    RETURNS TABLE (
        nth integer, current_version integer, menu_version integer, etag varchar,
        rendered_at bigint, valid_until bigint, body_gzip bytea, body_bytes integer
    )
    LANGUAGE plpgsql STABLE AS $$
    BEGIN
        FOR wanted IN 1 .. coalesce(cardinality(wanted_restaurant_ids), 0) LOOP
            RETURN QUERY
            SELECT wanted, r.menu_version, p.menu_version, p.etag, p.rendered_at,
                   p.valid_until, p.body_gzip, p.body_bytes
            FROM restaurant AS r
            LEFT OUTER JOIN published_menu AS p
                ON p.restaurant_id = r.id AND p.variant = wanted_variants[wanted]
            WHERE r.id = wanted_restaurant_ids[wanted];
        END LOOP;
    END
    $$
"""
_CREATE_FUNCTION = sa.DDL(CREATE_FUNCTION_SQL)
DROP_FUNCTION_SQL = f"DROP FUNCTION IF EXISTS {READ_PUBLISHED_FUNCTION}(integer[], varchar[])"
_DROP_FUNCTION = sa.DDL(DROP_FUNCTION_SQL)
sa.event.listen(
    PublishedMenu.__table__, "after_create", _CREATE_FUNCTION.execute_if(dialect="postgresql")
)
sa.event.listen(
    PublishedMenu.__table__, "before_drop", _DROP_FUNCTION.execute_if(dialect="postgresql")
)


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
        PublishedMenu.variant == DEFAULT_VARIANT,
        PublishedMenu.menu_version == Restaurant.menu_version,
        PublishedMenu.restaurant_id == Restaurant.id,
    )
    return list(
        session.scalars(sa.select(Restaurant.id).where(~current.exists()).order_by(Restaurant.id))
    )


def published_variants(session: Session, restaurant_id: int | None = None) -> dict[int, list[str]]:
    """Each restaurant (or just `restaurant_id`, if it exists) with the variants besides
    the default one it has published: what `presto menus publish` renders again."""
    query = sa.select(Restaurant.id).order_by(Restaurant.id)
    if restaurant_id is not None:
        query = query.where(Restaurant.id == restaurant_id)
    found: dict[int, list[str]] = {rid: [] for rid in session.scalars(query)}
    rows = session.execute(
        sa.select(PublishedMenu.restaurant_id, PublishedMenu.variant)
        .where(PublishedMenu.variant != DEFAULT_VARIANT)
        .order_by(PublishedMenu.restaurant_id, PublishedMenu.variant)
    )
    for rid, variant in rows:
        if rid in found and variant in VARIANT_NAMES:
            found[rid].append(variant)
    return found
