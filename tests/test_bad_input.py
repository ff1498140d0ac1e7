"""Bad input gets a 4xx problem document and changes nothing, on SQLite and PostgreSQL.

Each case schemathesis found (or the hardening issue listed) is a plain test here: ids
past the id columns' range, text with NUL, other control characters or lone surrogates,
JSON values of the wrong type, bodies nested too deep or not UTF-8, and pages past the
last possible one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services.limits import MAX_JSON_DEPTH, MAX_PAGE
from presto.storage.models import MAX_ID
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, snapshot
from tests.helpers.problems import assert_problem


@pytest.fixture
def menu(session: Session) -> dict[str, Any]:
    """Restaurant with two items, and an admin key."""
    restaurant_id = add_restaurant(session, "Diner")
    item_ids = add_items(session, restaurant_id, ["Burger", "Ketchup"])
    session.commit()
    return {"restaurant": restaurant_id, "items": item_ids, "auth": bearer(add_key(session))}


def send_json(
    client: FlaskClient, method: str, path: str, body: bytes, auth: dict[str, str]
) -> Any:
    """A request with `body` sent as it is, labelled as JSON."""
    headers = {**auth, "Content-Type": "application/json"}
    return client.open(path, method=method, data=body, headers=headers)


# ids in paths ---------------------------------------------------------------------------

NOT_IDS = [
    "3977027642320813",  # past the 32-bit id columns: was a 500 on PostgreSQL
    str(MAX_ID + 1),
    "1510988292381968484301472866227978240",
    "0",
    "-1",
    "1.0",
    "%D9%A1",  # ARABIC-INDIC DIGIT ONE: a digit to Python's int(), not an id
    "abc",
]


@pytest.mark.parametrize("segment", NOT_IDS)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/restaurant/{}"),
        ("GET", "/restaurant/{}/item"),
        ("GET", "/restaurant/{}/menu"),
        ("GET", "/restaurant/1/item/{}"),
        ("DELETE", "/restaurant/{}"),
        ("DELETE", "/restaurant/{}/item/351"),
        ("PATCH", "/restaurant/1/item/{}"),
        ("POST", "/restaurant/{}/item"),
        ("PUT", "/restaurant/1/item/{}/modifiers"),
    ],
)
def test_a_path_segment_that_cannot_be_an_id_is_404(
    client: FlaskClient,
    engine: Engine,
    menu: dict[str, Any],
    segment: str,
    method: str,
    template: str,
) -> None:
    before = snapshot(engine)
    response = client.open(
        template.format(segment), method=method, json={"name": "x"}, headers=menu["auth"]
    )
    assert_problem(response, 404)
    assert snapshot(engine) == before


def test_the_largest_id_is_an_id(client: FlaskClient, menu: dict[str, Any]) -> None:
    body = assert_problem(client.get(f"/restaurant/{MAX_ID}"), 404)
    assert body["detail"] == f"Restaurant {MAX_ID} does not exist."


@pytest.mark.parametrize(
    "modifiers",
    [[22686268681348455151518471300317184, 1], [MAX_ID + 1], [0], [-158], [1.0], ["2"], [True]],
)
def test_modifier_ids_out_of_range_or_of_the_wrong_type_are_422(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], modifiers: list[Any]
) -> None:
    before = snapshot(engine)
    path = f"/restaurant/{menu['restaurant']}/item/{menu['items'][0]}/modifiers"
    response = send_json(client, "PUT", path, json.dumps(modifiers).encode(), menu["auth"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["modifiers"]
    assert snapshot(engine) == before


@pytest.mark.parametrize("item_id", [-1, MAX_ID + 1, -60168, 1.5, True, "1"])
def test_menu_document_ids_are_bounded_integers(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], item_id: Any
) -> None:
    before = snapshot(engine)
    document = {"items": [{"id": item_id, "name": "Soup"}]}
    response = client.put(
        f"/restaurant/{menu['restaurant']}/menu", json=document, headers=menu["auth"]
    )
    body = assert_problem(response, 422)
    assert body["errors"] == {"items": {"0": {"id": [body["errors"]["items"]["0"]["id"][0]]}}}
    assert snapshot(engine) == before


# pages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["page=17100203431608824616580022272", f"page={MAX_PAGE + 1}", "page=1.5", "x=1"]
)
def test_a_page_past_the_bound_is_422(
    client: FlaskClient, menu: dict[str, Any], query: str
) -> None:
    body = assert_problem(client.get(f"/restaurant?{query}"), 422)
    assert list(body["errors"]) == [query.split("=")[0]]


def test_the_last_possible_page_is_empty(client: FlaskClient, menu: dict[str, Any]) -> None:
    response = client.get(f"/restaurant?page={MAX_PAGE}&page_size=100")
    assert response.status_code == 200
    assert response.get_json() == []
    assert json.loads(response.headers["X-Pagination"]) == {
        "total": 1,
        "total_pages": 1,
        "first_page": 1,
        "last_page": 1,
    }


# text -----------------------------------------------------------------------------------

REFUSED_TEXT = [
    "\u0000",
    "Fries\u0000",
    "a\u0001b",
    "tab\u000bvertical",
    "esc\u001b[0m",
    "x\ud8ae y",
]


@pytest.mark.parametrize("text", REFUSED_TEXT)
@pytest.mark.parametrize("field", ["name", "description", "category"])
def test_control_characters_and_lone_surrogates_in_item_text_are_422(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], text: str, field: str
) -> None:
    before = snapshot(engine)
    fields = {"name": "Fries", field: text}
    restaurant = menu["restaurant"]
    # json.dumps escapes every one of them (`\u0000`, `\ud8ae`), as a client would.
    for method, path in [
        ("POST", f"/restaurant/{restaurant}/item"),
        ("PATCH", f"/restaurant/{restaurant}/item/{menu['items'][0]}"),
    ]:
        response = send_json(client, method, path, json.dumps(fields).encode(), menu["auth"])
        body = assert_problem(response, 422)
        assert list(body["errors"]) == [field]
    assert snapshot(engine) == before


@pytest.mark.parametrize("text", REFUSED_TEXT)
def test_control_characters_in_a_restaurant_name_are_422(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], text: str
) -> None:
    before = snapshot(engine)
    body_bytes = json.dumps({"name": text}).encode()
    for method, path in [("POST", "/restaurant"), ("PATCH", f"/restaurant/{menu['restaurant']}")]:
        body = assert_problem(send_json(client, method, path, body_bytes, menu["auth"]), 422)
        assert list(body["errors"]) == ["name"]
    assert snapshot(engine) == before


def test_tab_newline_and_carriage_return_are_stored_as_sent(
    client: FlaskClient, menu: dict[str, Any]
) -> None:
    text = "Line one\r\nline\ttwo \u00e4\u20ac\U0001f354"
    path = f"/restaurant/{menu['restaurant']}/item"
    created = client.post(path, json={"name": "Fries", "description": text}, headers=menu["auth"])
    assert created.status_code == 201
    stored = client.get(created.headers["Location"]).get_json()
    assert stored["description"] == text


def test_a_control_character_in_the_category_filter_is_422(
    client: FlaskClient, menu: dict[str, Any]
) -> None:
    body = assert_problem(client.get(f"/restaurant/{menu['restaurant']}/item?category=a%00b"), 422)
    assert list(body["errors"]) == ["category"]


def test_a_lone_surrogate_in_a_field_name_is_named_without_it(
    client: FlaskClient, engine: Engine, menu: dict[str, Any]
) -> None:
    before = snapshot(engine)
    response = send_json(
        client, "POST", "/restaurant", b'{"name": "x", "\\ud800": 1}', menu["auth"]
    )
    body = assert_problem(response, 422)
    assert body["errors"] == {"?": ["Unknown field."]}
    assert snapshot(engine) == before


# strict JSON types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("standalone", 0),
        ("standalone", 1),
        ("available", "true"),
        ("available", None),
        ("price", 1.0),
        ("price", True),
        ("price", "100"),
        ("min_choices", False),
        ("max_choices", 2.5),
        ("position", "1"),
        ("name", 5),
        ("calories", True),
        ("calories", 1.5),
        ("tags", "vegan"),
        ("tags", ["vegan", "vegan"]),
        ("allergens", ["peanut"]),
        ("image_url", "http://example.com/a.jpg"),
        ("image_url", "https://example.com/\u0000.jpg"),
        ("schedule", [{"days": ["mon"], "start": "7:00", "end": "11:00"}]),
        ("schedule", [{"days": ["mon"], "start": "07:00\u0000", "end": "11:00"}]),
    ],
)
def test_values_of_the_wrong_json_type_are_422(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], field: str, value: Any
) -> None:
    before = snapshot(engine)
    path = f"/restaurant/{menu['restaurant']}/item"
    response = client.post(path, json={"name": "Fries", field: value}, headers=menu["auth"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == [field]
    assert snapshot(engine) == before


# bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "deeper than"),  # was a RecursionError, a 500
        (b'{"name": ' + b"[" * 1025 + b"]" * 1025 + b"}", "deeper than"),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "deeper than"),
        (b'{"x": "\\ud800", "y": ' + b"[" * 5000 + b"]" * 5000 + b"}", "deeper than"),
        (b'{"name": "Caf\xe9"}', "not valid UTF-8"),
        (b'{"name": "x\xed\xa0\x80"}', "not valid UTF-8"),
        (b'{"name": "x"', "not valid JSON"),
        (b'{"name": NaN}', "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], body: bytes, detail: str
) -> None:
    before = snapshot(engine)
    for method, path in [
        ("POST", "/restaurant"),
        ("POST", f"/restaurant/{menu['restaurant']}/item"),
        ("PUT", f"/restaurant/{menu['restaurant']}/item/{menu['items'][0]}/modifiers"),
        ("PUT", f"/restaurant/{menu['restaurant']}/menu"),
    ]:
        problem = assert_problem(send_json(client, method, path, body, menu["auth"]), 400)
        assert detail in problem["detail"]
    assert snapshot(engine) == before


@pytest.mark.parametrize("body", [[], [{"name": "Fries"}], "Fries", 5, None, True])
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("POST", "/restaurant"),
        ("PATCH", "/restaurant/{r}"),
        ("POST", "/restaurant/{r}/item"),
        ("PATCH", "/restaurant/{r}/item/{i}"),
        ("PATCH", "/restaurant/{r}/items"),
        ("PUT", "/restaurant/{r}/menu"),
        ("PUT", "/restaurant/{r}/item/{i}/sold-out"),
    ],
)
def test_a_body_that_is_no_json_object_is_told_so(
    client: FlaskClient,
    engine: Engine,
    menu: dict[str, Any],
    method: str,
    template: str,
    body: Any,
) -> None:
    before = snapshot(engine)
    path = template.format(r=menu["restaurant"], i=menu["items"][0])
    sent = send_json(client, method, path, json.dumps(body).encode(), menu["auth"])
    problem = assert_problem(sent, 422)
    assert problem["detail"] == "The body must be a JSON object."
    assert "errors" not in problem
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("template", "body", "errors"),
    [
        ("/restaurant/{r}/items", {"items": [5]}, {"items": {"0": ["Must be a JSON object."]}}),
        ("/restaurant/{r}/menu", {"items": [[]]}, {"items": {"0": ["Must be a JSON object."]}}),
        (
            "/restaurant/{r}/item/{i}",
            {"schedule": ["mon"]},
            {"schedule": {"0": ["Must be a JSON object."]}},
        ),
    ],
)
def test_a_nested_value_that_is_no_object_is_named_by_its_place(
    client: FlaskClient,
    engine: Engine,
    menu: dict[str, Any],
    template: str,
    body: Any,
    errors: dict[str, Any],
) -> None:
    before = snapshot(engine)
    path = template.format(r=menu["restaurant"], i=menu["items"][0])
    method = "PUT" if path.endswith("/menu") else "PATCH"
    problem = assert_problem(client.open(path, method=method, json=body, headers=menu["auth"]), 422)
    assert (problem["detail"], problem["errors"]) == ("The request is not valid.", errors)
    assert snapshot(engine) == before


def test_a_body_at_the_depth_bound_is_read(client: FlaskClient, menu: dict[str, Any]) -> None:
    nested = b'{"name": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    response = send_json(client, "POST", "/restaurant", nested, menu["auth"])
    body = assert_problem(response, 422)
    assert body["errors"] == {"name": ["Not a valid string."]}


@pytest.mark.parametrize("value", ["yes", "on", "t", "True", "2", ""])
def test_a_query_boolean_is_true_false_1_or_0(
    client: FlaskClient, menu: dict[str, Any], value: str
) -> None:
    path = f"/restaurant/{menu['restaurant']}/item"
    body = assert_problem(client.get(f"{path}?all={value}"), 422)
    assert list(body["errors"]) == ["all"]
    for accepted, expected in [("true", 2), ("1", 2), ("false", 0), ("0", 0)]:
        response = client.get(f"{path}?available={accepted}&all=true")
        assert response.status_code == 200
        assert len(response.get_json()) == expected


@pytest.mark.parametrize("name", ["tags", "exclude_allergens"])
@pytest.mark.parametrize("value", ["", ",", "vegan,"])
def test_an_empty_filter_list_or_member_is_422(
    client: FlaskClient, menu: dict[str, Any], name: str, value: str
) -> None:
    # An empty list filters nothing: a client that sends one has lost its values.
    path = f"/restaurant/{menu['restaurant']}/item"
    body = assert_problem(client.get(f"{path}?{name}={value}&all=false"), 422)
    assert list(body["errors"]) == [name]


@pytest.mark.parametrize("currency", ["USD\n", "usd", "US", "EURO", "U\u0000D"])
def test_a_currency_is_three_capital_letters_exactly(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], currency: str
) -> None:
    before = snapshot(engine)
    body_bytes = json.dumps({"name": "Bistro", "currency": currency}).encode()
    body = assert_problem(send_json(client, "POST", "/restaurant", body_bytes, menu["auth"]), 422)
    assert list(body["errors"]) == ["currency"]
    assert snapshot(engine) == before


# found by schemathesis ------------------------------------------------------------------


@pytest.mark.parametrize("header", ['W/""', '""', '"", W/"m0-0.1.0"', "*"])
def test_an_empty_entity_tag_in_if_none_match_is_no_match(
    client: FlaskClient, menu: dict[str, Any], header: str
) -> None:
    """`W/""` was parsed into a tag of None and failed the menu call with a 500."""
    path = f"/restaurant/{menu['restaurant']}/item"
    response = client.get(path, headers={"If-None-Match": header})
    if header == "*":
        assert response.status_code == 304
    else:
        assert response.status_code == 200
        assert response.is_json and isinstance(response.get_json(), list)


@pytest.mark.parametrize(
    "modifiers", [[0], [MAX_ID + 1], [{"id": MAX_ID + 1}], [{"id": 1, "price": True}]]
)
def test_link_objects_are_bounded_like_ids(
    client: FlaskClient, engine: Engine, menu: dict[str, Any], modifiers: list[Any]
) -> None:
    before = snapshot(engine)
    item = menu["items"][0]
    path = f"/restaurant/{menu['restaurant']}/item/{item}/modifiers"
    response = client.put(path, json=modifiers, headers=menu["auth"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["modifiers"]
    assert snapshot(engine) == before


def test_a_nul_in_a_time_zone_is_422(
    client: FlaskClient, engine: Engine, menu: dict[str, Any]
) -> None:
    before = snapshot(engine)
    path = f"/restaurant/{menu['restaurant']}"
    response = client.patch(path, json={"timezone": "Europe/Berlin\u0000"}, headers=menu["auth"])
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["timezone"]
    assert snapshot(engine) == before
