"""A platform's catalog for the benchmark: thousands of restaurants, made by copying one.

Copying rows in SQL (`INSERT ... SELECT` over a numbers table) fills 5,000 demo-sized menus
in seconds on SQLite and PostgreSQL alike, where inserting them through the ORM would take
minutes. Copy `n` (from 1) of the template is restaurant `last id + n`, so the copies' ids
are one contiguous range, and its items get ids `id + n * stride`, so they never collide.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import sqlalchemy as sa

from presto.menus.publishing import publish_menus
from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.models import Item, Restaurant, item_modifier


def _copy_rows(table: sa.Table, replace: dict[str, str], where: str) -> sa.TextClause:
    """`INSERT INTO table SELECT ... FROM table, copies WHERE where`, each column as is
    unless `replace` gives its expression (over `t` the template row, `copies.n`)."""
    columns = [column.name for column in table.columns]
    values = ", ".join(replace.get(name, f"t.{name}") for name in columns)
    return sa.text(
        f"WITH RECURSIVE copies(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copies "
        f"WHERE n < :copies) "
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"SELECT {values} FROM {table.name} t, copies WHERE {where}"
    )


def copy_restaurant(database_url: str, template_id: int, copies: int) -> tuple[int, int]:
    """Add `copies` copies of restaurant `template_id` with its items and links; returns
    the first and last id of the copies."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.begin() as connection:
            last_restaurant = connection.scalar(sa.select(sa.func.max(Restaurant.id))) or 0
            item_stride = connection.scalar(sa.select(sa.func.max(Item.id))) or 0
            params = {"copies": copies, "template": template_id}
            _insert_copies(connection, params, last_restaurant, item_stride)
            if connection.dialect.name == "postgresql":
                _move_sequences_past_copies(connection)
    finally:
        engine.dispose()
    return last_restaurant + 1, last_restaurant + copies


def _insert_copies(
    connection: sa.Connection, params: dict[str, int], last_restaurant: int, item_stride: int
) -> None:
    """The template's restaurant row, items and item-modifier links, once per copy, with
    the copy's restaurant id and its items' ids shifted by the copy's multiple of the stride."""
    new_restaurant = f"{last_restaurant} + copies.n"
    connection.execute(
        _copy_rows(
            Restaurant.__table__,  # type: ignore[arg-type]
            {"id": new_restaurant, "name": "t.name || ' #' || copies.n"},
            "t.id = :template",
        ),
        params,
    )
    connection.execute(
        _copy_rows(
            Item.__table__,  # type: ignore[arg-type]
            {"id": f"t.id + copies.n * {item_stride}", "restaurant_id": new_restaurant},
            "t.restaurant_id = :template",
        ),
        params,
    )
    connection.execute(
        _copy_rows(
            item_modifier,
            {
                "restaurant_id": new_restaurant,
                "item_id": f"t.item_id + copies.n * {item_stride}",
                "modifier_id": f"t.modifier_id + copies.n * {item_stride}",
            },
            "t.restaurant_id = :template",
        ),
        params,
    )


def _move_sequences_past_copies(connection: sa.Connection) -> None:
    """Ids were given explicitly: move PostgreSQL's sequences past them."""
    for table in ("restaurant", "item"):
        connection.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        )


def publish_catalog(database_url: str, first: int, last: int) -> None:
    """Publish the menus of restaurants `first`..`last`, as writes through presto would
    have: two processes, one per core, each taking every other restaurant."""
    with ProcessPoolExecutor(max_workers=2) as pool:
        for done in pool.map(_publish_range, [database_url] * 2, [first, first + 1], [last] * 2):
            if not done:
                raise RuntimeError("publishing the catalog failed")


def _publish_range(database_url: str, start: int, last: int) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        return publish_menus(make_sessionmaker(engine), range(start, last + 1, 2))
    finally:
        engine.dispose()
