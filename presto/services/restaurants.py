"""The restaurant service: list, create, change and delete restaurants.

Every write to a restaurant's menu starts with `lock_restaurant`, so writes to one
restaurant run one at a time and each sees the graph the one before it committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.errors import ConflictError, NotFoundError
from presto.services import outbox
from presto.services.changes import apply_changes
from presto.services.etags import Precondition, restaurant_etag
from presto.storage.engine import CHANGED_MENUS, NOTIFY_CHANNEL
from presto.storage.models import Restaurant


def restaurant_not_found(restaurant_id: int) -> NotFoundError:
    """The error of a request naming a restaurant that does not exist."""
    return NotFoundError(f"Restaurant {restaurant_id} does not exist.")


def get_restaurant(session: Session, restaurant_id: int) -> Restaurant:
    """The restaurant with this id, or `NotFoundError`."""
    restaurant = session.get(Restaurant, restaurant_id)
    if restaurant is None:
        raise restaurant_not_found(restaurant_id)
    return restaurant


def lock_restaurant(session: Session, restaurant_id: int) -> Restaurant:
    """The restaurant, locked against other writers until the transaction ends.

    PostgreSQL takes the row lock with `SELECT ... FOR UPDATE`. SQLite has one writer
    at a time, but Python's sqlite3 opens the transaction only at the first write, so a
    no-op `UPDATE` comes first: it takes the write lock before anything is read.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            sa.update(Restaurant).where(Restaurant.id == restaurant_id).values(id=Restaurant.id)
        )
    restaurant = session.scalars(
        sa.select(Restaurant)
        .where(Restaurant.id == restaurant_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if restaurant is None:
        raise restaurant_not_found(restaurant_id)
    return restaurant


def bump_menu_version(session: Session, restaurant_id: int, *, announce: bool = True) -> int:
    """Count one more change to the restaurant's menu, in the caller's transaction.

    Every write that changes what the menu call returns must call this before it commits:
    ETags key on `menu_version`, and after the commit the session tells the menu cache of
    every worker (`presto.storage.engine.make_sessionmaker`). Unless `announce` is False,
    the change's `menu.updated` event goes into the outbox in the same transaction
    (presto.services.outbox). Returns the new version.
    """
    bumped = session.execute(
        sa.update(Restaurant)
        .where(Restaurant.id == restaurant_id)
        .values(menu_version=Restaurant.menu_version + 1)
        .returning(Restaurant.menu_version, Restaurant.external_id)
    ).one_or_none()
    if bumped is None:
        raise restaurant_not_found(restaurant_id)
    version, external_id = bumped
    # The change's events name the restaurant's external id: read here, not again.
    outbox.remember_external_id(session, restaurant_id, external_id)
    session.info.setdefault(CHANGED_MENUS, set()).add(restaurant_id)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered on commit to the presto workers of every host (presto.serving.generations).
        session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, str(restaurant_id))))
    if announce:
        outbox.menu_updated(session, restaurant_id, version)
    return version


@dataclass(frozen=True)
class RestaurantPage:
    """One page of restaurants and how many there are in all."""

    restaurants: list[Restaurant]
    total: int


def list_restaurants(session: Session, *, offset: int, limit: int) -> RestaurantPage:
    """Restaurants in id order, `limit` of them from `offset` on."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Restaurant)) or 0
    restaurants = session.scalars(
        sa.select(Restaurant).order_by(Restaurant.id).offset(offset).limit(limit)
    ).all()
    return RestaurantPage(list(restaurants), total)


def external_id_taken(
    session: Session, external_id: str | None, restaurant_id: int | None = None
) -> ConflictError | None:
    """The 409 of giving a restaurant (`restaurant_id`, or a new one) an external id that
    another restaurant has, naming it; None when it is free."""
    if external_id is None:
        return None
    other = session.scalar(
        sa.select(Restaurant.id).where(
            Restaurant.external_id == external_id, Restaurant.id != (restaurant_id or 0)
        )
    )
    if other is None:
        return None
    return ConflictError(
        f"Restaurant {other} already has external_id {external_id!r}.", restaurant_id=other
    )


def create_restaurant(session: Session, fields: dict[str, Any]) -> Restaurant:
    """Add a restaurant with an empty menu."""
    taken = external_id_taken(session, fields.get("external_id"))
    if taken:
        raise taken
    restaurant = Restaurant(**fields)
    session.add(restaurant)
    session.commit()
    return restaurant


def update_restaurant(
    session: Session, restaurant_id: int, changes: dict[str, Any], precondition: Precondition
) -> Restaurant:
    """Change the restaurant's name, currency or time zone; a new currency or time zone
    changes the menu call."""
    restaurant = lock_restaurant(session, restaurant_id)
    precondition(lambda: restaurant_etag(restaurant))
    taken = external_id_taken(session, changes.get("external_id"), restaurant_id)
    if taken:
        raise taken
    changed = apply_changes(restaurant, changes)
    session.flush()
    if "currency" in changed or "timezone" in changed:
        # Every item of the menu call carries the currency; schedules follow the zone.
        bump_menu_version(session, restaurant_id)
    session.commit()
    return restaurant


def delete_restaurant(session: Session, restaurant_id: int, precondition: Precondition) -> None:
    """Delete the restaurant with its items, links and API keys."""
    restaurant = lock_restaurant(session, restaurant_id)
    precondition(lambda: restaurant_etag(restaurant))
    # Recorded like any menu change, so caches of the menu call hear of it.
    version = bump_menu_version(session, restaurant_id, announce=False)
    outbox.restaurant_deleted(session, restaurant, version)
    session.execute(sa.delete(Restaurant).where(Restaurant.id == restaurant_id))
    session.commit()
