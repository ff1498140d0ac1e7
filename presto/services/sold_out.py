"""Sold out ("86") until a time: the POS's most frequent live edit, made cheap.

Marking an item sold out writes one column and bumps the item's and the menu's versions,
without loading the menu. From `until` on the item shows as available again with no
write: the menu view counts that instant as a boundary (presto.services.menu_view), so
every cached and published copy of the menu ends there, as at a schedule boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.errors import NotFoundError
from presto.services import outbox
from presto.services.restaurants import bump_menu_version, lock_restaurant
from presto.storage.models import Item

# "Until further notice": the latest instant kept, shown as is in `sold_out_until`.
UNTIL_FURTHER_NOTICE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def set_sold_out(
    session: Session, restaurant_id: int, item_id: int, until: datetime | None
) -> Item:
    """Make the item sold out until `until` (None: no longer sold out), in one
    transaction; setting what is already stored changes nothing, not even the version."""
    lock_restaurant(session, restaurant_id)
    item = session.scalars(
        sa.select(Item).where(Item.restaurant_id == restaurant_id, Item.id == item_id)
    ).one_or_none()
    if item is None:
        raise NotFoundError(f"Restaurant {restaurant_id} has no item {item_id}.")
    if item.sold_out_until != until:
        item.sold_out_until = until
        item.version += 1
        session.flush()
        outbox.stock_changed(session, item, bump_menu_version(session, restaurant_id))
    session.commit()
    return item
