"""A restaurant's whole menu as one document: export it, or replace the menu from one.

The document lists every item in menu order; an item's `modifiers` are ids of items of
the same document. Export, import into an empty restaurant and export again gives the
same document up to the ids, which the database assigns afresh on import.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from presto.services import graph
from presto.services.etags import Precondition, menu_etag
from presto.services.items import current_links, defaults_rule_broken
from presto.services.menus import load_menu
from presto.services.restaurants import bump_menu_version, lock_restaurant
from presto.storage.links import ModifierLink, insert_links, link_rows
from presto.storage.models import ITEM_FIELDS, Item


@dataclass(frozen=True)
class MenuDocument:
    """The items of a menu document, and the entity tag of the menu it shows."""

    items: list[dict[str, Any]]
    etag: str


@dataclass
class ImportCounts:
    """How many items an import created, updated, deleted and left unchanged."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def changed(self) -> bool:
        """Whether the menu changed at all."""
        return bool(self.created or self.updated or self.deleted)


def export_menu(session: Session, restaurant_id: int) -> MenuDocument:
    """The restaurant's menu as a document."""
    menu = load_menu(session, restaurant_id, include_all=True)
    items = [
        {
            "id": item.id,
            **{name: getattr(item, name) for name in ITEM_FIELDS},
            "modifiers": current_links(item),
        }
        for item in menu.items
    ]
    return MenuDocument(items, menu_etag(menu.restaurant))


def import_menu(
    session: Session,
    restaurant_id: int,
    document_items: list[dict[str, Any]],
    precondition: Precondition,
) -> ImportCounts:
    """Replace the restaurant's whole menu with the document's, all or nothing.

    The document must already be valid (presto.schemas.MenuDocumentSchema: ids unique,
    references resolved, limits kept); its graph must be free of cycles and within the
    nesting limit, else `ConflictError` naming the path by document ids, and within the
    expansion budget, else `MenuTooLargeError` naming an item by document id.
    """
    restaurant = lock_restaurant(session, restaurant_id)
    precondition(lambda: menu_etag(restaurant))
    _check_document(document_items)
    # Links go with their items (ON DELETE CASCADE).
    deleted = len(
        session.scalars(
            sa.delete(Item)
            .where(Item.restaurant_id == restaurant_id)
            .returning(Item.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    created = _insert_document(session, restaurant_id, document_items)
    bump_menu_version(session, restaurant_id)
    session.commit()
    session.expunge_all()
    return ImportCounts(created=created, deleted=deleted)


def load_first_menu(
    session: Session, restaurant_id: int, document_items: list[dict[str, Any]]
) -> None:
    """Store the document's items as the menu a restaurant added in the caller's
    transaction starts with, checked as `import_menu` checks them; the caller commits.

    Nothing is replaced, so no change is counted: the menu stays at version 1, the one a
    restaurant is created with. `--reset-db` loads the demo so (presto.demo.loading).
    """
    _check_document(document_items)
    _insert_document(session, restaurant_id, document_items)


def _check_document(document_items: list[dict[str, Any]]) -> None:
    """The rules a valid document may still break: defaults within `max_choices`
    (`ValidationError`), a graph without cycles within the nesting limit and the expansion
    budget (`ConflictError`, `MenuTooLargeError`)."""
    _check_defaults(document_items)
    graph.check_graph(
        {item["id"]: [link.modifier_id for link in document_links(item)] for item in document_items}
    )


def _insert_document(
    session: Session, restaurant_id: int, document_items: list[dict[str, Any]]
) -> int:
    """Insert the document's items in menu order with their links, under new ids; returns
    how many items."""
    items = [
        Item(
            restaurant_id=restaurant_id,
            position=position,
            **{name: spec[name] for name in ITEM_FIELDS if name in spec},
        )
        for position, spec in enumerate(document_items)
    ]
    session.add_all(items)
    session.flush()
    _insert_document_links(session, restaurant_id, document_items, items)
    return len(items)


def _insert_document_links(
    session: Session, restaurant_id: int, document_items: list[dict[str, Any]], items: list[Item]
) -> None:
    """Insert the links of the document's items, now stored as `items`, under new ids."""
    new_ids = {spec["id"]: item.id for spec, item in zip(document_items, items, strict=True)}
    insert_links(
        session,
        [
            row
            for spec in document_items
            for row in link_rows(
                restaurant_id,
                new_ids[spec["id"]],
                (
                    replace(link, modifier_id=new_ids[link.modifier_id])
                    for link in document_links(spec)
                ),
            )
        ],
    )


def document_links(spec: dict[str, Any]) -> list[ModifierLink]:
    """A document item's modifiers, by document id (none when left out)."""
    links: list[ModifierLink] = spec.get("modifiers", [])
    return links


def _check_defaults(document_items: list[dict[str, Any]]) -> None:
    """Raise a `ValidationError` naming each item whose defaults exceed its max_choices."""
    errors = {}
    for index, spec in enumerate(document_items):
        broken = defaults_rule_broken(spec.get("max_choices"), document_links(spec))
        if broken:
            errors[index] = {"modifiers": [broken]}
    if errors:
        raise ValidationError({"items": errors})
