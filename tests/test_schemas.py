"""ItemSchema: the item JSON shape, shared subtrees, cycles and the depth cap."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from presto.schemas.bodies import ItemPatchSchema
from presto.schemas.documents import DocumentItemSchema
from presto.schemas.output import ItemSchema
from presto.services.limits import MAX_MODIFIER_DEPTH
from presto.services.menus import load_menu
from presto.storage.models import ITEM_FIELDS
from tests.helpers.data import add_items, add_restaurant, link

ITEM_KEYS = [
    "id",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "is_default",
    "available",
    "standalone",
    "min_choices",
    "max_choices",
    "schedule",
    "image_url",
    "tags",
    "allergens",
    "calories",
    "external_id",
    "sold_out",
    "sold_out_until",
    "modifiers",
]


def depth(item: dict[str, Any]) -> int:
    """Levels of modifiers below `item`."""
    return 1 + max((depth(m) for m in item["modifiers"]), default=-1)


def test_item_shape(session: Session) -> None:
    restaurant_id = add_restaurant(session, currency="EUR")
    pizza, crust = add_items(session, restaurant_id, ["Pizza", "Crust"], price=950)
    link(session, restaurant_id, pizza, [crust])
    session.commit()

    dumped = ItemSchema().dump(load_menu(session, restaurant_id, include_all=True).items, many=True)

    assert [list(item) for item in dumped] == [ITEM_KEYS, ITEM_KEYS]
    assert dumped[0] == {
        "id": pizza,
        "name": "Pizza",
        "description": "",
        "category": None,
        "price": 950,
        "currency": "EUR",
        "is_default": False,
        "available": True,
        "standalone": True,
        "min_choices": 0,
        "max_choices": None,
        "schedule": [],
        "image_url": None,
        "tags": [],
        "allergens": [],
        "calories": None,
        "external_id": None,
        "sold_out": False,
        "sold_out_until": None,
        "modifiers": [dumped[1]],
    }
    assert dumped[1]["modifiers"] == []


def test_the_writable_item_fields_are_listed_once() -> None:
    """What a writer sets (`ITEM_FIELDS`: documents, demo, sync) is what the bodies take
    and what answers show, so the one list cannot drift from the schemas."""
    assert set(ItemPatchSchema().fields) == {*ITEM_FIELDS, "position"}
    assert set(DocumentItemSchema().fields) == {*ITEM_FIELDS, "id", "modifiers"}
    shown = {"id", "currency", "is_default", "sold_out", "modifiers"}
    assert set(ITEM_KEYS) == {*ITEM_FIELDS, *shown}
    assert ItemSchema.Meta.fields == tuple(ITEM_KEYS)


def test_a_shared_modifier_is_serialized_once(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    burger, fries, ketchup = add_items(session, restaurant_id, ["Burger", "Fries", "Ketchup"])
    link(session, restaurant_id, burger, [fries, ketchup])
    link(session, restaurant_id, fries, [ketchup])
    session.commit()

    items = load_menu(session, restaurant_id).items
    # One Item object for ketchup, wherever it hangs.
    assert items[0].modifiers[1] is items[1].modifiers[0] is items[0].modifiers[0].modifiers[0]
    dumped = ItemSchema().dump(items, many=True)
    burger_json = dumped[0]
    # The same serialized dict is reused under every parent.
    assert burger_json["modifiers"][1] is burger_json["modifiers"][0]["modifiers"][0]
    assert burger_json["modifiers"][1]["name"] == "Ketchup"
    # Fries and ketchup are menu entries too: serialized once for both places.
    assert dumped[1] is burger_json["modifiers"][0]
    assert dumped[2] is burger_json["modifiers"][1]


def test_a_cycle_is_cut_where_it_would_repeat_an_item(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    a, b, c = add_items(session, restaurant_id, ["A", "B", "C"])
    link(session, restaurant_id, a, [b])
    link(session, restaurant_id, b, [a, c])  # B -> A closes the cycle A -> B -> A
    session.commit()

    dumped = ItemSchema().dump(load_menu(session, restaurant_id).items, many=True)
    by_name = {item["name"]: item for item in dumped}

    # From A: A -> B -> C; the link B -> A is left out on this path.
    assert [m["name"] for m in by_name["A"]["modifiers"]] == ["B"]
    assert [m["name"] for m in by_name["A"]["modifiers"][0]["modifiers"]] == ["C"]
    # From B: B -> A (whose link back to B is left out), and B -> C.
    assert [m["name"] for m in by_name["B"]["modifiers"]] == ["A", "C"]
    assert by_name["B"]["modifiers"][0]["modifiers"] == []


def test_nesting_stops_at_the_depth_cap(session: Session) -> None:
    restaurant_id = add_restaurant(session)
    chain = add_items(session, restaurant_id, [f"Level {n}" for n in range(12)])
    for parent, child in itertools.pairwise(chain):
        link(session, restaurant_id, parent, [child])
    session.commit()

    dumped = ItemSchema().dump(load_menu(session, restaurant_id).items, many=True)

    assert depth(dumped[0]) == MAX_MODIFIER_DEPTH
    assert depth(dumped[11 - MAX_MODIFIER_DEPTH]) == MAX_MODIFIER_DEPTH
    assert depth(dumped[11 - MAX_MODIFIER_DEPTH + 1]) == MAX_MODIFIER_DEPTH - 1
    assert depth(dumped[11]) == 0


def test_a_shared_subtree_is_not_reused_past_the_depth_cap(session: Session) -> None:
    # "Deep" sits at level 1 under Top and again at level 6 under a long chain; its own
    # subtree is 3 deep, so under the chain it must be cut to fit the cap of 8 levels.
    restaurant_id = add_restaurant(session)
    top, deep, *rest = add_items(session, restaurant_id, ["Top", "Deep", *map(str, range(8))])
    below_deep, chain = rest[:3], rest[3:]
    link(session, restaurant_id, top, [deep, chain[0]])
    link(session, restaurant_id, deep, [below_deep[0]])
    link(session, restaurant_id, below_deep[0], [below_deep[1]])
    link(session, restaurant_id, below_deep[1], [below_deep[2]])
    for parent, child in itertools.pairwise(chain):
        link(session, restaurant_id, parent, [child])
    link(session, restaurant_id, chain[-1], [deep])
    session.commit()

    top_json = ItemSchema().dump(load_menu(session, restaurant_id).items, many=True)[0]

    assert depth(top_json["modifiers"][0]) == 3
    assert depth(top_json) == MAX_MODIFIER_DEPTH
