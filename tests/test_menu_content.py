"""Menu content a front end needs: prices and defaults in context, images, tags,
allergens and calories, and the menu call's filters, through the API on both backends."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services.dietary import ALLERGENS, TAGS
from tests.helpers.data import add_key, add_restaurant, bearer, snapshot
from tests.helpers.items import create
from tests.helpers.problems import assert_problem


def put_modifiers(
    client: FlaskClient, restaurant_id: int, item_id: int, body: Any, key: dict[str, str]
) -> Any:
    return client.put(
        f"/restaurant/{restaurant_id}/item/{item_id}/modifiers", json=body, headers=key
    )


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def test_a_shared_modifier_has_its_price_in_each_parent(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, name="Burger", price=1299)
    salad = create(client, diner, key, name="Salad", price=899)
    bacon = create(client, diner, key, name="Bacon", price=200, standalone=False)
    cheese = create(client, diner, key, name="Cheese", price=100, standalone=False)

    on_burger = put_modifiers(client, diner, burger, [bacon, cheese], key)
    on_salad = put_modifiers(
        client, diner, salad, [{"id": bacon, "price": 150}, {"id": cheese, "is_default": True}], key
    )

    assert on_burger.status_code == on_salad.status_code == 200
    menu = by_name(client.get(f"/restaurant/{diner}/item").get_json())
    assert list(menu) == ["Burger", "Salad"]
    assert menu["Burger"]["is_default"] is False
    assert [(m["name"], m["price"], m["is_default"]) for m in menu["Burger"]["modifiers"]] == [
        ("Bacon", 200, False),
        ("Cheese", 100, False),
    ]
    assert [(m["name"], m["price"], m["is_default"]) for m in menu["Salad"]["modifiers"]] == [
        ("Bacon", 150, False),
        ("Cheese", 100, True),
    ]
    # The item's own resource shows the same context.
    salad_json = client.get(f"/restaurant/{diner}/item/{salad}").get_json()
    assert salad_json["modifiers"][0]["price"] == 150
    # Ids alone reset the terms.
    assert (
        put_modifiers(client, diner, salad, [bacon], key).get_json()["modifiers"][0]["price"] == 200
    )


def test_the_normalized_shape_carries_the_link_terms(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    salad = create(client, diner, key, name="Salad", price=899)
    bacon = create(client, diner, key, name="Bacon", price=200, standalone=False)
    egg = create(client, diner, key, name="Egg", price=100, standalone=False)
    put_modifiers(client, diner, salad, [{"id": bacon, "price": 150, "is_default": True}, egg], key)

    normalized = client.get(f"/restaurant/{diner}/item?shape=normalized").get_json()

    items = {item["id"]: item for item in normalized["items"]}
    assert items[salad]["modifiers"] == [bacon, egg]
    assert items[salad]["modifier_terms"] == [{"id": bacon, "price": 150, "is_default": True}]
    assert items[bacon]["price"] == 200
    assert items[bacon]["modifier_terms"] == []


def test_defaults_over_max_choices_are_refused(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    side = create(client, diner, key, name="Side", standalone=False, min_choices=1, max_choices=1)
    fries = create(client, diner, key, name="Fries", standalone=False)
    salad = create(client, diner, key, name="Salad", standalone=False)
    assert put_modifiers(client, diner, side, [{"id": fries, "is_default": True}, salad], key)
    before = snapshot(engine)

    response = put_modifiers(
        client,
        diner,
        side,
        [{"id": fries, "is_default": True}, {"id": salad, "is_default": True}],
        key,
    )

    body = assert_problem(response, 422)
    assert body["errors"] == {"modifiers": ["2 choices are defaults, more than max_choices (1)."]}
    # Lowering max_choices below the defaults there are is refused too.
    patched = client.patch(
        f"/restaurant/{diner}/item/{side}", json={"min_choices": 0, "max_choices": 0}, headers=key
    )
    assert assert_problem(patched, 422)["errors"] == {
        "max_choices": ["1 choices are defaults, more than max_choices (0)."]
    }
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("link", "errors"),
    [
        ({"id": 1, "price": "150"}, {"price": ["Not a valid integer."]}),
        (
            {"id": 1, "price": -1},
            {"price": ["Must be greater than or equal to 0 and less than or equal to 100000000."]},
        ),
        ({"id": 1, "is_default": 1}, {"is_default": ["Not a valid boolean."]}),
        ({"id": 1, "is_default": "true"}, {"is_default": ["Not a valid boolean."]}),
        ({"id": 1, "colour": "red"}, {"colour": ["Unknown field."]}),
        ({"price": 5}, {"id": ["Missing data for required field."]}),
        ("7", ["Must be an item id or an object with id, price and is_default."]),
        (True, ["Must be an item id or an object with id, price and is_default."]),
    ],
)
def test_a_bad_link_object_is_422_by_index(
    client: FlaskClient,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    link: Any,
    errors: Any,
) -> None:
    burger = create(client, diner, key, name="Burger")
    before = snapshot(engine)

    response = put_modifiers(client, diner, burger, [link], key)

    assert assert_problem(response, 422)["errors"] == {"modifiers": {"0": errors}}
    assert snapshot(engine) == before


FULL_ITEM = {
    "name": "Oatmeal",
    "price": 599,
    "image_url": "https://cdn.example.com/menu/oatmeal.jpg?w=640",
    "tags": ["vegan", "dairy_free"],
    "allergens": ["gluten"],
    "calories": 380,
    "schedule": [{"days": ["mon", "tue"], "start": "07:00", "end": "11:00"}],
}


def test_an_item_with_every_content_field(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    item_id = create(client, diner, key, **FULL_ITEM)

    shown = client.get(f"/restaurant/{diner}/item/{item_id}").get_json()

    assert {name: shown[name] for name in FULL_ITEM} == FULL_ITEM
    changed = client.patch(
        f"/restaurant/{diner}/item/{item_id}",
        json={"image_url": None, "tags": [], "calories": None, "schedule": []},
        headers=key,
    ).get_json()
    assert (changed["image_url"], changed["tags"], changed["calories"], changed["schedule"]) == (
        None,
        [],
        None,
        [],
    )
    assert changed["allergens"] == ["gluten"]


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"image_url": "http://cdn.example.com/a.jpg"},
            {"image_url": ["Must be an absolute https URL."]},
        ),
        ({"image_url": "/images/a.jpg"}, {"image_url": ["Must be an absolute https URL."]}),
        ({"image_url": "https://"}, {"image_url": ["Must be an absolute https URL."]}),
        (
            {"image_url": "https://cdn.example.com/a\u0001.jpg"},
            {"image_url": ["Must be an absolute https URL."]},
        ),
        (
            {"image_url": "https://cdn.example.com/a b.jpg"},
            {"image_url": ["Must be an absolute https URL."]},
        ),
        (
            {"image_url": "https://cdn.example.com/" + "a" * 2048},
            {"image_url": ["Longer than maximum length 2048."]},
        ),
        (
            {"tags": ["vegan", "keto"]},
            {"tags": {"1": [f"Must be one of: {', '.join(TAGS)}."]}},
        ),
        ({"tags": ["vegan", "vegan"]}, {"tags": ["vegan appears more than once."]}),
        ({"tags": "vegan"}, {"tags": ["Not a valid list."]}),
        (
            {"allergens": ["peanut"]},
            {"allergens": {"0": [f"Must be one of: {', '.join(ALLERGENS)}."]}},
        ),
        (
            {"calories": -1},
            {"calories": ["Must be greater than or equal to 0 and less than or equal to 100000."]},
        ),
        ({"calories": "300"}, {"calories": ["Not a valid integer."]}),
        ({"calories": 12.5}, {"calories": ["Not a valid integer."]}),
    ],
)
def test_bad_content_fields_are_422_per_field(
    client: FlaskClient,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    fields: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    item_id = create(client, diner, key, name="Toast")
    before = snapshot(engine)

    created = client.post(f"/restaurant/{diner}/item", json={"name": "X", **fields}, headers=key)
    patched = client.patch(f"/restaurant/{diner}/item/{item_id}", json=fields, headers=key)

    assert assert_problem(created, 422)["errors"] == errors
    assert assert_problem(patched, 422)["errors"] == errors
    assert snapshot(engine) == before


@pytest.fixture
def dietary_menu(client: FlaskClient, diner: int, key: dict[str, str]) -> dict[str, int]:
    """Entries whose allergens come from themselves, from a required group whose every
    choice has one, or only from some choices of a group."""
    ids = {
        "bowl": create(client, diner, key, name="Bowl", tags=["vegan", "gluten_free"]),
        "salad": create(client, diner, key, name="Salad", tags=["vegan"]),
        "toast": create(
            client, diner, key, name="Toast", tags=["vegetarian"], allergens=["gluten"]
        ),
        "dressing": create(
            client, diner, key, name="Dressing", standalone=False, min_choices=1, max_choices=1
        ),
        "ranch": create(
            client, diner, key, name="Ranch", standalone=False, allergens=["milk", "eggs"]
        ),
        "blue": create(
            client, diner, key, name="Blue cheese", standalone=False, allergens=["milk"]
        ),
        "oil": create(client, diner, key, name="Oil", standalone=False),
        "extras": create(client, diner, key, name="Extras", standalone=False),
        "nuts": create(client, diner, key, name="Nuts", standalone=False, allergens=["nuts"]),
    }
    creamy = create(client, diner, key, name="Creamy", standalone=False, min_choices=1)
    put_modifiers(client, diner, creamy, [ids["ranch"], ids["blue"]], key)
    put_modifiers(client, diner, ids["dressing"], [creamy], key)
    # The salad's required dressing offers only creamy ones (all with milk): the salad has
    # milk. The bowl's required group also offers oil: no milk forced.
    put_modifiers(client, diner, ids["salad"], [ids["dressing"], ids["extras"]], key)
    bowl_dressing = create(
        client, diner, key, name="Bowl dressing", standalone=False, min_choices=1, max_choices=1
    )
    put_modifiers(client, diner, bowl_dressing, [ids["ranch"], ids["oil"]], key)
    put_modifiers(client, diner, ids["bowl"], [bowl_dressing, ids["extras"]], key)
    # Optional extras never force their allergens.
    put_modifiers(client, diner, ids["extras"], [ids["nuts"]], key)
    return ids


def names(client: FlaskClient, restaurant_id: int, query: str) -> list[str]:
    response = client.get(f"/restaurant/{restaurant_id}/item?{query}")
    assert response.status_code == 200, response.get_json()
    return [item["name"] for item in response.get_json()]


@pytest.mark.usefixtures("dietary_menu")
def test_filter_by_tags(client: FlaskClient, diner: int) -> None:
    assert names(client, diner, "tags=vegan") == ["Bowl", "Salad"]
    assert names(client, diner, "tags=vegan,gluten_free") == ["Bowl"]
    assert names(client, diner, "tags=halal") == []
    body = assert_problem(client.get(f"/restaurant/{diner}/item?tags=vegan,keto"), 422)
    assert list(body["errors"]) == ["tags"]


@pytest.mark.usefixtures("dietary_menu")
def test_exclude_allergens_counts_required_groups(client: FlaskClient, diner: int) -> None:
    assert names(client, diner, "exclude_allergens=milk") == ["Bowl", "Toast"]
    # Eggs are in ranch only: the salad's guest may pick blue cheese instead.
    assert names(client, diner, "exclude_allergens=eggs") == ["Bowl", "Salad", "Toast"]
    assert names(client, diner, "exclude_allergens=gluten") == ["Bowl", "Salad"]
    assert names(client, diner, "exclude_allergens=gluten,milk") == ["Bowl"]
    # Nuts are only in an optional extra.
    assert names(client, diner, "exclude_allergens=nuts") == ["Bowl", "Salad", "Toast"]
    assert names(client, diner, "tags=vegan&exclude_allergens=milk") == ["Bowl"]
    body = assert_problem(client.get(f"/restaurant/{diner}/item?exclude_allergens=peanut"), 422)
    assert list(body["errors"]) == ["exclude_allergens"]


def test_export_import_round_trips_every_new_field(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, **{**FULL_ITEM, "name": "Burger"})
    side = create(client, diner, key, name="Side", standalone=False, min_choices=1, max_choices=1)
    fries = create(client, diner, key, name="Fries", standalone=False, tags=["vegan"])
    bacon = create(client, diner, key, name="Bacon", price=200, standalone=False, calories=90)
    put_modifiers(client, diner, side, [{"id": fries, "is_default": True}], key)
    put_modifiers(client, diner, burger, [side, {"id": bacon, "price": 150}], key)
    document = client.get(f"/restaurant/{diner}/menu").get_json()
    exported = {item["name"]: item for item in document["items"]}
    assert exported["Burger"]["modifiers"] == [
        side,
        {"id": bacon, "price": 150, "is_default": False},
    ]
    assert exported["Side"]["modifiers"] == [{"id": fries, "price": None, "is_default": True}]
    assert {name: exported["Burger"][name] for name in FULL_ITEM if name != "name"} == {
        name: value for name, value in FULL_ITEM.items() if name != "name"
    }
    copy = add_restaurant(session, "Copy")
    session.commit()

    imported = client.put(
        f"/restaurant/{copy}/menu", json=document, headers=bearer(add_key(session, copy))
    )

    assert imported.status_code == 200, imported.get_json()
    again = client.get(f"/restaurant/{copy}/menu").get_json()

    def renumbered(doc: dict[str, Any]) -> list[Any]:
        index = {item["id"]: n for n, item in enumerate(doc["items"])}
        return [
            {
                **{k: v for k, v in item.items() if k != "id"},
                "modifiers": [
                    index[m] if isinstance(m, int) else {**m, "id": index[m["id"]]}
                    for m in item["modifiers"]
                ],
            }
            for item in doc["items"]
        ]

    assert renumbered(again) == renumbered(document)
    original = client.get(f"/restaurant/{diner}/item").get_json()
    copied = client.get(f"/restaurant/{copy}/item").get_json()
    assert copied[0]["modifiers"][1]["price"] == original[0]["modifiers"][1]["price"] == 150


def test_an_import_with_too_many_defaults_is_refused(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    before = snapshot(engine)
    document = {
        "items": [
            {
                "id": 1,
                "name": "Side",
                "min_choices": 1,
                "max_choices": 1,
                "modifiers": [{"id": 2, "is_default": True}, {"id": 3, "is_default": True}],
            },
            {"id": 2, "name": "Fries"},
            {"id": 3, "name": "Salad"},
        ]
    }

    response = client.put(f"/restaurant/{diner}/menu", json=document, headers=key)

    assert assert_problem(response, 422)["errors"] == {
        "items": {"0": {"modifiers": ["2 choices are defaults, more than max_choices (1)."]}}
    }
    assert snapshot(engine) == before


@pytest.mark.usefixtures("demo")
def test_the_demo_menu_shows_the_content(client: FlaskClient) -> None:
    menu = by_name(client.get("/restaurant/1/item").get_json())
    toppings = by_name(menu["Classic Burger"]["modifiers"])["Extra toppings"]["modifiers"]
    garden = by_name(menu["Garden Salad"]["modifiers"])
    sides = by_name(menu["Classic Burger"]["modifiers"])["Choose your side"]["modifiers"]

    assert by_name(toppings)["Bacon"]["price"] == 200
    assert garden["Bacon"]["price"] == 150
    assert [side["name"] for side in sides if side["is_default"]] == ["Fries"]
    assert menu["Side Salad"]["tags"] == ["vegan", "gluten_free"]
    assert "milk" in menu["Cheeseburger"]["allergens"]
    assert menu["Classic Burger"]["calories"] == 720
    assert menu["Classic Burger"]["image_url"].startswith("https://")
    assert menu["Buttermilk Pancakes"]["schedule"] == [
        {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "07:00",
            "end": "11:00",
        }
    ]
    # 08:00 in New York (UTC-5 in winter) and 12:00.
    morning = by_name(client.get("/restaurant/1/item?at=2026-11-20T13:00:00Z").get_json())
    noon = by_name(client.get("/restaurant/1/item?at=2026-11-20T17:00:00Z").get_json())
    assert morning["Buttermilk Pancakes"]["available"] is True
    assert noon["Buttermilk Pancakes"]["available"] is False
    # Every demo item passes the write API's validation: the menu re-imports as it is.
    assert client.get("/restaurant/1/menu").status_code == 200


@pytest.mark.usefixtures("demo")
def test_the_demo_document_is_valid_input(client: FlaskClient, session: Session) -> None:
    document = client.get("/restaurant/1/menu").get_json()
    copy = add_restaurant(session, "Copy")
    session.commit()

    response = client.put(
        f"/restaurant/{copy}/menu", json=document, headers=bearer(add_key(session, copy))
    )

    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["items"]) == len(document["items"])


def test_the_openapi_document_describes_the_content(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    create = schemas["ItemCreate"]["properties"]
    menu_call = document["paths"]["/restaurant/{restaurant_id}/item"]["get"]
    set_modifiers = document["paths"]["/restaurant/{restaurant_id}/item/{item_id}/modifiers"]

    assert create["tags"]["items"]["enum"] == list(TAGS)
    assert create["allergens"]["items"]["enum"] == list(ALLERGENS)
    assert create["image_url"]["maxLength"] == 2048
    assert create["schedule"]["items"] == {"$ref": "#/components/schemas/Window"}
    assert set(schemas["Window"]["required"]) == {"days", "start", "end"}
    assert {"timezone"} <= set(schemas["Restaurant"]["properties"])
    assert {"is_default", "schedule", "image_url", "tags", "allergens", "calories"} <= set(
        schemas["Item"]["properties"]
    )
    assert {"at", "tags", "exclude_allergens"} <= {p.get("name") for p in menu_call["parameters"]}
    body = set_modifiers["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert [option["type"] for option in body["items"]["oneOf"]] == ["integer", "object"]


def test_the_statement_count_stays_constant_with_content(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    burger = create(client, diner, key, **{**FULL_ITEM, "name": "Burger"})
    side = create(client, diner, key, name="Side", standalone=False, min_choices=1)
    fries = create(client, diner, key, name="Fries", standalone=False, allergens=["celery"])
    put_modifiers(client, diner, side, [{"id": fries, "is_default": True}], key)
    put_modifiers(client, diner, burger, [{"id": side, "price": 0}], key)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    response = client.get(
        f"/restaurant/{diner}/item?tags=vegan&exclude_allergens=celery&at=2026-11-20T08:00:00Z"
    )

    assert response.status_code == 200
    assert response.get_json() == []
    assert len(statements) == 3
