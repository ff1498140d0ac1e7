"""The item service: one item with its modifier tree; create, change, link and delete.

Each write locks its restaurant (presto.services.restaurants.lock_restaurant), checks the caller's
precondition against the current entity tag, applies the rules, bumps the menu version
and commits, all in one transaction: a failed write leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from presto.errors import ConflictError, NotFoundError
from presto.services import graph, outbox
from presto.services.changes import apply_changes
from presto.services.etags import Precondition, item_etag
from presto.services.limits import MAX_ITEMS_PER_RESTAURANT
from presto.services.menu_view import link_terms
from presto.services.menus import load_menu, modifier_graph
from presto.services.restaurants import bump_menu_version, get_restaurant, lock_restaurant
from presto.storage.links import ModifierLink, as_link, replace_links, select_links
from presto.storage.models import Item, item_modifier


@dataclass(frozen=True)
class ItemTree:
    """An item with its modifiers attached to any depth, and its entity tag."""

    item: Item
    etag: str


def choices_rule_broken(min_choices: int | None, max_choices: int | None) -> str | None:
    """Why a modifier group's rule is impossible (`min_choices` above `max_choices`), or
    None when it holds; a null `max_choices` is no upper limit."""
    if min_choices is not None and max_choices is not None and min_choices > max_choices:
        return f"min_choices ({min_choices}) exceeds max_choices ({max_choices})."
    return None


def defaults_rule_broken(max_choices: int | None, links: Sequence[ModifierLink]) -> str | None:
    """Why a group's pre-selected choices break its `max_choices`, or None when they fit."""
    defaults = sum(1 for link in links if link.is_default)
    if max_choices is not None and defaults > max_choices:
        return f"{defaults} choices are defaults, more than max_choices ({max_choices})."
    return None


def get_item(session: Session, restaurant_id: int, item_id: int) -> ItemTree:
    """The item of this restaurant with its modifier tree, or `NotFoundError`."""
    menu = load_menu(session, restaurant_id, include_all=True)
    for item in menu.items:
        if item.id == item_id:
            return ItemTree(item, item_etag(menu.restaurant, item))
    raise NotFoundError(f"Restaurant {restaurant_id} has no item {item_id}.")


def external_id_taken(
    session: Session, restaurant_id: int, external_id: str | None, item_id: int | None = None
) -> ConflictError | None:
    """The 409 of giving an item (`item_id`, or a new one) an external id that another item
    of the restaurant has, naming that item; None when it is free."""
    if external_id is None:
        return None
    other = session.scalar(
        sa.select(Item.id).where(
            Item.restaurant_id == restaurant_id,
            Item.external_id == external_id,
            Item.id != (item_id or 0),
        )
    )
    if other is None:
        return None
    return ConflictError(
        f"Item {other} of restaurant {restaurant_id} already has external_id {external_id!r}.",
        item_id=other,
    )


def find_by_external_id(session: Session, restaurant_id: int, external_id: str) -> int:
    """The id of the restaurant's item with this external id, or `NotFoundError`."""
    item_id = session.scalar(
        sa.select(Item.id).where(
            Item.restaurant_id == restaurant_id, Item.external_id == external_id
        )
    )
    if item_id is None:
        get_restaurant(session, restaurant_id)
        raise NotFoundError(
            f"Restaurant {restaurant_id} has no item with external_id {external_id!r}."
        )
    return item_id


def create_item(session: Session, restaurant_id: int, fields: dict[str, Any]) -> ItemTree:
    """Add an item without modifiers; it goes last in menu order unless given a position.

    It is one more object of the nested menu, so a menu at `MAX_MENU_OBJECTS` takes none.
    """
    lock_restaurant(session, restaurant_id)
    taken = external_id_taken(session, restaurant_id, fields.get("external_id"))
    if taken:
        raise taken
    count = session.scalar(
        sa.select(sa.func.count()).select_from(Item).where(Item.restaurant_id == restaurant_id)
    )
    if (count or 0) >= MAX_ITEMS_PER_RESTAURANT:
        raise ConflictError(
            f"Restaurant {restaurant_id} already has {MAX_ITEMS_PER_RESTAURANT} items, "
            "the most one restaurant may have."
        )
    graph.check_expansion(restaurant_graph(session, restaurant_id), new_items=1)
    if fields.get("position") is None:
        last = session.scalar(
            sa.select(sa.func.max(Item.position)).where(Item.restaurant_id == restaurant_id)
        )
        fields = {**fields, "position": 0 if last is None else last + 1}
    item = Item(restaurant_id=restaurant_id, **fields)
    session.add(item)
    session.flush()
    bump_menu_version(session, restaurant_id)
    session.commit()
    return get_item(session, restaurant_id, item.id)


def update_item(
    session: Session,
    restaurant_id: int,
    item_id: int,
    changes: dict[str, Any],
    precondition: Precondition,
) -> ItemTree:
    """Change some of the item's fields; `min_choices <= max_choices` must still hold.

    An item nesting past the expansion budget (links written by plain SQL) could not be
    answered: `TooLargeToRenderError` then, before anything changes.
    """
    restaurant = lock_restaurant(session, restaurant_id)
    current = get_item(session, restaurant_id, item_id)
    precondition(lambda: current.etag)
    item = current.item
    graph.check_renderable(modifier_graph([item]), [item.id])
    new_max = changes.get("max_choices", item.max_choices)
    broken = choices_rule_broken(changes.get("min_choices", item.min_choices), new_max)
    if broken:
        field = "max_choices" if new_max != item.max_choices else "min_choices"
        raise ValidationError({field: [broken]})
    broken = defaults_rule_broken(new_max, current_links(item))
    if broken:
        raise ValidationError({"max_choices": [broken]})
    taken = external_id_taken(session, restaurant_id, changes.get("external_id"), item_id)
    if taken:
        raise taken
    changed = apply_changes(item, changes)
    if changed:
        session.flush()
        version = bump_menu_version(session, restaurant.id)
        if "sold_out_until" in changed:
            outbox.stock_changed(session, item, version)
    session.commit()
    return get_item(session, restaurant_id, item_id)


def set_modifiers(
    session: Session,
    restaurant_id: int,
    item_id: int,
    modifiers: Sequence[int | ModifierLink],
    precondition: Precondition,
) -> ItemTree:
    """Make `modifiers` the item's modifiers, in this order, each with its price in this
    item and whether it is a default choice.

    Every id must be an item of the same restaurant, the defaults may not outnumber the
    item's `max_choices`, and the restaurant's whole graph must stay free of cycles and
    within the nesting limit (else `ConflictError`) and the expansion budget (else
    `MenuTooLargeError`).
    """
    lock_restaurant(session, restaurant_id)
    current = get_item(session, restaurant_id, item_id)
    precondition(lambda: current.etag)
    links = [as_link(modifier) for modifier in modifiers]
    if current_links(current.item) == links:
        session.commit()
        return current
    broken = defaults_rule_broken(current.item.max_choices, links)
    if broken:
        raise ValidationError({"modifiers": [broken]})
    wanted = [link.modifier_id for link in links]
    _check_same_restaurant(session, restaurant_id, wanted)
    graph_links = restaurant_graph(session, restaurant_id)
    graph_links[item_id] = wanted
    graph.check_graph(graph_links, first=item_id)
    replace_links(session, restaurant_id, item_id, links)
    current.item.version += 1
    session.flush()
    bump_menu_version(session, restaurant_id)
    session.commit()
    return get_item(session, restaurant_id, item_id)


def current_links(item: Item) -> list[ModifierLink]:
    """The item's modifiers as loaded by the menu service, with their terms."""
    return [
        ModifierLink(modifier.id, terms.price, terms.is_default)
        for modifier in item.modifiers
        for terms in (link_terms(item, modifier.id),)
    ]


def _check_same_restaurant(session: Session, restaurant_id: int, modifier_ids: list[int]) -> None:
    """Raise a `ValidationError` naming each id that is not an item of this restaurant."""
    known = set(
        session.scalars(
            sa.select(Item.id).where(Item.restaurant_id == restaurant_id, Item.id.in_(modifier_ids))
        )
    )
    unknown = {
        index: [f"Item {modifier_id} is not an item of restaurant {restaurant_id}."]
        for index, modifier_id in enumerate(modifier_ids)
        if modifier_id not in known
    }
    if unknown:
        raise ValidationError({"modifiers": unknown})


def delete_item(
    session: Session, restaurant_id: int, item_id: int, precondition: Precondition
) -> None:
    """Delete the item and take it out of every parent's modifiers."""
    lock_restaurant(session, restaurant_id)
    current = get_item(session, restaurant_id, item_id)
    precondition(lambda: current.etag)
    parents = sa.select(item_modifier.c.item_id).where(item_modifier.c.modifier_id == item_id)
    # A parent's modifier list changes, so its version does too.
    session.execute(sa.update(Item).where(Item.id.in_(parents)).values(version=Item.version + 1))
    # The links go with the item (ON DELETE CASCADE).
    session.delete(current.item)
    session.flush()
    bump_menu_version(session, restaurant_id)
    session.commit()


def restaurant_graph(session: Session, restaurant_id: int) -> dict[int, list[int]]:
    """Each item of the restaurant mapped to its modifiers' ids, in order."""
    graph_links: dict[int, list[int]] = {
        item_id: []
        for item_id in session.scalars(
            sa.select(Item.id).where(Item.restaurant_id == restaurant_id)
        )
    }
    for parent_id, modifier_id in session.execute(select_links(restaurant_id)):
        graph_links[parent_id].append(modifier_id)
    return graph_links
