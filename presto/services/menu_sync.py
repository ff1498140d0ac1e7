"""A sync import: a menu document matched to the stored menu by external id.

A POS or an aggregator's middleware sends its whole menu whenever it likes. Each document
item names its stored counterpart by `external_id`: a matched item keeps its presto id
(so every stored reference to it holds) and takes the document's values, a new one is
created, and a stored one the document leaves out is deleted (or kept, without `prune`).
A field a document item leaves out keeps its stored value (a new item gets the default).
All of it is one transaction with at most one new menu version, and a document equal to
what is stored changes nothing: no version, no publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from presto.errors import ConflictError
from presto.services import graph
from presto.services.changes import apply_changes
from presto.services.etags import Precondition, menu_etag
from presto.services.items import current_links, defaults_rule_broken, restaurant_graph
from presto.services.limits import MAX_ITEMS_PER_RESTAURANT
from presto.services.menu_documents import ImportCounts, document_links
from presto.services.menus import load_menu
from presto.services.restaurants import bump_menu_version, lock_restaurant
from presto.storage.links import ModifierLink, replace_links
from presto.storage.models import ITEM_FIELDS, MAX_ID, Item, item_modifier


@dataclass
class SyncCounts(ImportCounts):
    """An import's counts, and the stored item each document item became, by document id."""

    items: dict[int, Item] = field(default_factory=dict)


def sync_menu(
    session: Session,
    restaurant_id: int,
    document_items: list[dict[str, Any]],
    precondition: Precondition,
    *,
    prune: bool = True,
) -> SyncCounts:
    """Bring the restaurant's menu in line with the document, matching by external id.

    The document must be valid (presto.schemas.MenuDocumentSchema) and every item must
    carry an `external_id` (else a `ValidationError` by index).
    """
    restaurant = lock_restaurant(session, restaurant_id)
    precondition(lambda: menu_etag(restaurant))
    _require_external_ids(document_items)
    graph.check_graph(
        {spec["id"]: [link.modifier_id for link in document_links(spec)] for spec in document_items}
    )
    stored = load_menu(session, restaurant_id, include_all=True).items
    by_external_id = {item.external_id: item for item in stored if item.external_id is not None}
    counts = SyncCounts()
    wanted = {spec["external_id"] for spec in document_items}
    left_out = [item.id for item in stored if item.external_id not in wanted]
    stale = left_out if prune else []
    if len(document_items) + len(left_out) - len(stale) > MAX_ITEMS_PER_RESTAURANT:
        raise ConflictError(
            f"The document's items and the {len(left_out)} kept ones would be more than "
            f"{MAX_ITEMS_PER_RESTAURANT}, the most one restaurant may have."
        )
    links_before = {item.id: current_links(item) for item in stored}
    _delete(session, restaurant_id, stale, counts)
    positions = _positions(document_items, by_external_id)
    touched = _write_items(
        session, restaurant_id, document_items, by_external_id, positions, counts
    )
    _write_links(session, restaurant_id, document_items, links_before, counts, touched)
    _check_final_graph(session, restaurant_id, document_items, counts, links_before)
    matched = [counts.items[spec["id"]].id for spec in document_items]
    counts.updated = sum(1 for item_id in matched if item_id in touched)
    counts.unchanged = sum(1 for item_id in matched if item_id in links_before) - counts.updated
    if counts.changed():
        session.flush()
        bump_menu_version(session, restaurant_id)
    session.commit()
    session.expunge_all()
    return counts


def _require_external_ids(document_items: list[dict[str, Any]]) -> None:
    """Refuse a document item without an `external_id`: it could never be matched."""
    errors = {
        index: {"external_id": ["Required when matching by external_id."]}
        for index, spec in enumerate(document_items)
        if spec.get("external_id") is None
    }
    if errors:
        raise ValidationError({"items": errors})


def _delete(session: Session, restaurant_id: int, stale: list[int], counts: SyncCounts) -> None:
    """Delete the items the document leaves out; parents that kept them change version."""
    if not stale:
        return
    parents = sa.select(item_modifier.c.item_id).where(item_modifier.c.modifier_id.in_(stale))
    session.execute(
        sa.update(Item)
        .where(Item.id.in_(parents), Item.id.not_in(stale))
        .values(version=Item.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        sa.delete(Item)
        .where(Item.restaurant_id == restaurant_id, Item.id.in_(stale))
        .execution_options(synchronize_session=False)
    )
    counts.deleted = len(stale)


def _positions(document_items: list[dict[str, Any]], by_external_id: dict[str, Item]) -> list[int]:
    """Menu positions giving the document's order: matched items keep theirs where that
    order holds (so an item that did not move is unchanged) and new ones fit between, else
    the document's own numbering."""
    matched = [by_external_id.get(spec["external_id"]) for spec in document_items]
    planned = [None if item is None else item.position for item in matched]
    index = 0
    while index < len(planned):
        end = index
        while end < len(planned) and planned[end] is None:
            end += 1
        if end > index:
            low = planned[index - 1] if index else None
            high = planned[end] if end < len(planned) else None
            planned[index:end] = _fit(end - index, low, high)
        index = end + 1
    # Ties go by id, and a new item's id is higher than any stored one.
    order = [
        (position, MAX_ID + 1 + number if item is None else item.id)
        for number, (position, item) in enumerate(zip(planned, matched, strict=True))
    ]
    if order == sorted(order) and None not in planned:
        return [position for position in planned if position is not None]
    return list(range(len(document_items)))


def _fit(count: int, low: int | None, high: int | None) -> list[int | None]:
    """Positions for `count` new items between the positions `low` and `high` (None: the
    start or the end of the menu): their own where there is room, else `low`'s (ties go by
    id); None where neither fits."""
    start = low + 1 if low is not None else 0 if high is None else high - count
    if start >= 0 and (high is None or start + count <= high):
        return list(range(start, start + count))
    if low is not None and (high is None or high > low):
        return [low] * count
    return [None] * count


def _write_items(
    session: Session,
    restaurant_id: int,
    document_items: list[dict[str, Any]],
    by_external_id: dict[str, Item],
    positions: list[int],
    counts: SyncCounts,
) -> set[int]:
    """Update matched items and create new ones; the ids of the matched items changed."""
    touched: set[int] = set()
    created: list[Item] = []
    for spec, position in zip(document_items, positions, strict=True):
        values = {name: spec[name] for name in ITEM_FIELDS if name in spec}
        values["position"] = position
        item = by_external_id.get(spec["external_id"])
        if item is None:
            item = Item(restaurant_id=restaurant_id, **values)
            session.add(item)
            created.append(item)
        elif apply_changes(item, values):
            touched.add(item.id)
        counts.items[spec["id"]] = item
    session.flush()
    counts.created = len(created)
    return touched


def _write_links(
    session: Session,
    restaurant_id: int,
    document_items: list[dict[str, Any]],
    links_before: dict[int, list[ModifierLink]],
    counts: SyncCounts,
    touched: set[int],
) -> None:
    """Give each document item that lists modifiers exactly those; a matched item whose
    links changed joins `touched`, its version going up once (with its fields or alone)."""
    for spec in document_items:
        if "modifiers" not in spec:
            continue
        item = counts.items[spec["id"]]
        links = [
            replace(link, modifier_id=counts.items[link.modifier_id].id)
            for link in spec["modifiers"]
        ]
        if links == links_before.get(item.id, []):
            continue
        replace_links(session, restaurant_id, item.id, links)
        if item.id in links_before and item.id not in touched:
            item.version += 1
            touched.add(item.id)


def _check_final_graph(
    session: Session,
    restaurant_id: int,
    document_items: list[dict[str, Any]],
    counts: SyncCounts,
    links_before: dict[int, list[ModifierLink]],
) -> None:
    """The menu as it will be: no cycle or too long chain (items that kept their stored
    modifiers or stayed out of the document join the document's graph), and no group with
    more defaults than its `max_choices`."""
    session.flush()
    graph.check_graph(restaurant_graph(session, restaurant_id))
    errors = {}
    for index, spec in enumerate(document_items):
        item = counts.items[spec["id"]]
        links = spec["modifiers"] if "modifiers" in spec else links_before.get(item.id, [])
        broken = defaults_rule_broken(item.max_choices, links)
        if broken:
            errors[index] = {"modifiers": [broken]}
    if errors:
        raise ValidationError({"items": errors})
