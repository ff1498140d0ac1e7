"""Load the demo menus, and tell whether a database holds anything else.

The demo ships as data beside this module: `restaurants.json` lists the restaurants in id
order, each as a `POST /restaurant` body with the file of its menu, a `PUT
/restaurant/<id>/menu` body (presto.schemas.documents). Loading creates each restaurant,
then stores its menu through the import service, so the demo passes every rule an import
does. On an empty database the document ids are the ids the items get, so each file is
what `GET /restaurant/<id>/menu` answers on the demo database (tests/test_demo.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from presto.schemas.bodies import RestaurantSchema
from presto.schemas.documents import MenuDocumentSchema
from presto.services.menu_documents import export_menu, load_first_menu
from presto.storage.models import ApiKey, Restaurant

_DATA = resources.files("presto.demo")


@dataclass(frozen=True)
class DemoRestaurant:
    """A demo restaurant as shipped: its `POST /restaurant` body and its menu document."""

    restaurant: dict[str, Any]
    menu: dict[str, Any]


def demo_restaurants() -> list[DemoRestaurant]:
    """The shipped demo restaurants, in id order, as JSON."""
    return [
        DemoRestaurant(entry["restaurant"], _read_json(entry["menu"]))
        for entry in _read_json("restaurants.json")
    ]


def _read_json(name: str) -> Any:
    return json.loads((_DATA / name).read_text(encoding="utf-8"))


def load_demo(session: Session) -> list[Restaurant]:
    """Insert the demo restaurants and menus; the caller commits."""
    restaurant_schema, document_schema = RestaurantSchema(), MenuDocumentSchema()
    restaurants = []
    for demo in demo_restaurants():
        restaurant = Restaurant(**restaurant_schema.load(demo.restaurant))
        session.add(restaurant)
        session.flush()
        load_first_menu(session, restaurant.id, document_schema.load(demo.menu)["items"])
        restaurants.append(restaurant)
    return restaurants


# A restaurant as compared with the demo: its shipped fields, and its menu document with
# every id replaced by the item's index in the menu.
MenuContent = tuple[dict[str, Any], list[dict[str, Any]]]


def beyond_demo(engine: Engine) -> str | None:
    """What the database holds besides the demo menus as `load_demo` writes them, as a
    phrase; None when it holds nothing else (no tables, empty ones, or the unchanged demo),
    so `--reset-db` would lose nothing it does not load again."""
    tables = set(sa.inspect(engine).get_table_names())
    if not {"restaurant", "api_key"} & tables:
        return None
    demo = demo_restaurants()
    try:
        with Session(engine) as session:
            keys = session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) or 0
            found = [_stored_content(session, row, demo) for row in _restaurants(session)]
    except SQLAlchemyError:
        return "tables this version of presto cannot read"
    if keys:
        return f"{keys} API key{'' if keys == 1 else 's'}"
    expected = [(shipped.restaurant, _numbered(shipped.menu)) for shipped in demo]
    if not found or found == expected:
        return None
    demo_names = {shipped.restaurant["name"] for shipped in demo}
    others = sum(1 for fields, _ in found if fields.get("name") not in demo_names)
    if others or len(found) > len(expected):
        return f"{len(found)} restaurants, not only the demo's"
    return "demo menus changed since they were loaded"


def _restaurants(session: Session) -> list[Restaurant]:
    return list(session.scalars(sa.select(Restaurant).order_by(Restaurant.id)))


def _stored_content(
    session: Session, restaurant: Restaurant, demo: list[DemoRestaurant]
) -> MenuContent:
    """A stored restaurant with the fields the demo's restaurants are shipped with."""
    shown = RestaurantSchema().dump(restaurant)
    shipped = {name for entry in demo for name in entry.restaurant}
    document = MenuDocumentSchema().dump({"items": export_menu(session, restaurant.id).items})
    return {name: shown[name] for name in sorted(shipped)}, _numbered(document)


def _numbered(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A menu document's items with every id, theirs and their modifiers', replaced by
    the item's index in the menu."""
    index = {item["id"]: number for number, item in enumerate(document["items"])}
    return [
        {
            **item,
            "id": index[item["id"]],
            "modifiers": [
                index[link] if isinstance(link, int) else {**link, "id": index[link["id"]]}
                for link in item["modifiers"]
            ],
        }
        for item in document["items"]
    ]
