"""What a menu shows at a moment: prices and defaults in context, availability at an
instant, and the menu call's filters.

The menu service attaches a `ItemView` to every loaded item; the schemas read it through
`shown_available` and `link_terms`, so an item loaded any other way shows its stored
fields. A modifier's price and default belong to the link from its parent: bacon is one
item, +2.00 on a burger and +1.50 on a salad.

An item sold out ("86") until an instant is shown unavailable until then, and the menu's
view changes at that instant exactly as it does at a schedule boundary: the instant
joins the boundaries `attach_views` returns, so every cache of the menu ends there.

A modifier outside its schedule (or sold out) is shown with `available: false` where it appears, and
its parent is not affected: the guest cannot pick that choice now, the rest of the item
stays orderable. Only the item's own flag and windows decide its `available`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from presto.services import dietary, schedules
from presto.storage.links import ModifierLink
from presto.storage.models import Item, Restaurant

_VIEW = "_presto_view"
_NO_TERMS = ModifierLink(0)


@dataclass
class ItemView:
    """What one loaded item shows: its availability at the menu's moment, and the terms
    of each of its links by modifier id."""

    available: bool
    links: dict[int, ModifierLink] = field(default_factory=dict)
    sold_out: bool = False


@dataclass(frozen=True)
class MenuFilter:
    """The menu call's filters of top-level items; None or empty: no filter."""

    include_all: bool = False
    available: bool | None = None
    category: str | None = None
    tags: Collection[str] = ()
    exclude_allergens: Collection[str] = ()
    external_id: str | None = None


def attach_views(
    restaurant: Restaurant,
    items: Sequence[Item],
    terms: Mapping[int, dict[int, ModifierLink]],
    moment: datetime,
) -> datetime | None:
    """Attach each item's `ItemView` at `moment` (`terms`: each parent's link terms by
    modifier id) and return the next instant the menu changes with time (None: never)."""
    tz = schedules.zone(restaurant.timezone)
    # When each item sold out at `moment` is offered again: boundaries like a window's.
    sold_out_ends: list[datetime] = []
    for item in items:
        sold_out = is_sold_out(item, moment)
        if sold_out and item.sold_out_until is not None:
            sold_out_ends.append(item.sold_out_until)
        available = (
            item.available and not sold_out and schedules.in_schedule(item.schedule, moment, tz)
        )
        setattr(item, _VIEW, ItemView(available, terms.get(item.id, {}), sold_out))
    boundary = schedules.next_boundary((item.schedule for item in items), tz, moment)
    return min([*sold_out_ends, *([boundary] if boundary else [])], default=None)


def is_sold_out(item: Item, moment: datetime) -> bool:
    """Whether the item is sold out at `moment`: its `sold_out_until` is later."""
    return item.sold_out_until is not None and moment < item.sold_out_until


def shown_sold_out(item: Item) -> bool:
    """Whether the item is sold out at its menu's moment (now when loaded otherwise)."""
    view: ItemView | None = getattr(item, _VIEW, None)
    if view is None:
        return is_sold_out(item, datetime.fromtimestamp(time.time(), UTC))
    return view.sold_out


def shown_available(item: Item) -> bool:
    """The item's availability at its menu's moment (its flag when loaded otherwise)."""
    view: ItemView | None = getattr(item, _VIEW, None)
    return item.available if view is None else view.available


def link_terms(parent: Item, modifier_id: int) -> ModifierLink:
    """The terms of the link from `parent` to a modifier (none when not loaded so)."""
    view: ItemView | None = getattr(parent, _VIEW, None)
    if view is None:
        return _NO_TERMS
    return view.links.get(modifier_id, _NO_TERMS)


def effective_price(parent: Item, modifier: Item) -> int:
    """What the modifier costs in this parent: the link's price, else its own."""
    price = link_terms(parent, modifier.id).price
    return modifier.price if price is None else price


def select_entries(items: Sequence[Item], menu_filter: MenuFilter) -> list[Item]:
    """The top-level items the menu call lists under `menu_filter`, in menu order."""
    memo: dict[int, frozenset[str]] = {}
    return [
        item
        for item in items
        if (menu_filter.include_all or item.standalone)
        and (menu_filter.available is None or shown_available(item) == menu_filter.available)
        and (menu_filter.category is None or item.category == menu_filter.category)
        and (menu_filter.external_id is None or item.external_id == menu_filter.external_id)
        and dietary.has_tags(item, menu_filter.tags)
        and (
            not menu_filter.exclude_allergens
            or dietary.free_of(item, menu_filter.exclude_allergens, memo)
        )
    ]
