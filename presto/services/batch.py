"""Batch changes: many items' partial updates in one transaction, one version, one publish.

A POS sends its price list as one request instead of one per item. Each change names its
item by `id` or, without one, by `external_id`; the changes apply in order, all or
nothing: the first one that cannot apply is named by its index and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from presto.errors import ConflictError, UnprocessableError
from presto.services import outbox
from presto.services.changes import apply_changes
from presto.services.etags import Precondition, menu_etag
from presto.services.items import choices_rule_broken, current_links, defaults_rule_broken
from presto.services.menus import load_menu
from presto.services.restaurants import bump_menu_version, lock_restaurant
from presto.storage.models import Item


@dataclass(frozen=True)
class BatchEntry:
    """One change's item as it stands after the batch, and whether the change changed it."""

    id: int
    external_id: str | None
    version: int
    changed: bool


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch did, change by change, and the menu version it left."""

    items: list[BatchEntry]
    menu_version: int


def apply_batch(
    session: Session,
    restaurant_id: int,
    changes: list[dict[str, Any]],
    precondition: Precondition,
) -> BatchOutcome:
    """Apply `changes` (each an `ItemPatchSchema` body with `id` or `external_id`) to the
    restaurant's items in one transaction; the menu version goes up once if any changed."""
    restaurant = lock_restaurant(session, restaurant_id)
    precondition(lambda: menu_etag(restaurant))
    items = load_menu(session, restaurant_id, include_all=True).items
    by_id = {item.id: item for item in items}
    by_external_id = {item.external_id: item for item in items if item.external_id is not None}
    seen: set[int] = set()
    outcome: list[BatchEntry] = []
    restocked: list[Item] = []  # items whose sold-out state changed
    for index, change in enumerate(changes):
        item, fields = _target(restaurant_id, index, change, by_id, by_external_id)
        if item.id in seen:
            raise _entry_error(index, "id", f"Item {item.id} is changed by an earlier entry.")
        seen.add(item.id)
        _check_rules(index, item, fields)
        _move_external_id(restaurant_id, index, item, fields, by_external_id)
        changed = apply_changes(item, fields)
        if "sold_out_until" in changed:
            restocked.append(item)
        if "external_id" in changed:
            # In entry order, so an id freed by an earlier entry is free in the index too.
            session.flush()
        outcome.append(BatchEntry(item.id, item.external_id, item.version, bool(changed)))
    version = restaurant.menu_version
    if any(entry.changed for entry in outcome):
        session.flush()
        version = bump_menu_version(session, restaurant_id)
        for item in restocked:
            outbox.stock_changed(session, item, version)
    session.commit()
    return BatchOutcome(outcome, version)


def _target(
    restaurant_id: int,
    index: int,
    change: dict[str, Any],
    by_id: dict[int, Item],
    by_external_id: dict[str, Item],
) -> tuple[Item, dict[str, Any]]:
    """The item a change names, and the fields it sets (without the naming key)."""
    if "id" in change:
        fields = {name: value for name, value in change.items() if name != "id"}
        item = by_id.get(change["id"])
        if item is None:
            message = f"Restaurant {restaurant_id} has no item {change['id']}."
            raise _entry_error(index, "id", message)
        return item, fields
    external_id = change["external_id"]
    fields = {name: value for name, value in change.items() if name != "external_id"}
    found = by_external_id.get(external_id)
    if found is None:
        message = f"Restaurant {restaurant_id} has no item with external_id {external_id!r}."
        raise _entry_error(index, "external_id", message)
    return found, fields


def _check_rules(index: int, item: Item, fields: dict[str, Any]) -> None:
    """The rules a single `PATCH` checks: a possible choice rule, defaults within it."""
    new_max = fields.get("max_choices", item.max_choices)
    broken = choices_rule_broken(fields.get("min_choices", item.min_choices), new_max)
    if broken:
        field = "max_choices" if new_max != item.max_choices else "min_choices"
        raise _entry_error(index, field, broken)
    broken = defaults_rule_broken(new_max, current_links(item))
    if broken:
        raise _entry_error(index, "max_choices", broken)


def _move_external_id(
    restaurant_id: int,
    index: int,
    item: Item,
    fields: dict[str, Any],
    by_external_id: dict[str, Item],
) -> None:
    """Record a change of the item's external id, refusing one another item has (409)."""
    if "external_id" not in fields or fields["external_id"] == item.external_id:
        return
    new = fields["external_id"]
    other = by_external_id.get(new) if new is not None else None
    if other is not None:
        raise ConflictError(
            f"Entry {index}: item {other.id} of restaurant {restaurant_id} already has "
            f"external_id {new!r}.",
            index=index,
            item_id=other.id,
        )
    if item.external_id is not None:
        del by_external_id[item.external_id]
    if new is not None:
        by_external_id[new] = item


def _entry_error(index: int, field: str, message: str) -> UnprocessableError:
    """The 422 naming the first change that cannot apply, by its index and field."""
    return UnprocessableError(
        f"Entry {index}: {message}", index=index, errors={"items": {index: {field: [message]}}}
    )
