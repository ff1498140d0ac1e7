"""Responses match the OpenAPI document exactly, so a client generated from it never breaks:
the menu call's two shapes and the `X-Pagination` header, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator
from sqlalchemy.orm import Session

from tests.helpers.data import add_items, add_restaurant, link


def validate(client: FlaskClient, schema: dict[str, Any], value: Any) -> None:
    """Validate `value` against `schema`, whose `$ref`s point into the served document."""
    document = client.get("/openapi.json").get_json()
    OAS30Validator({**schema, "components": document["components"]}).validate(value)


def menu_response_schema(client: FlaskClient) -> dict[str, Any]:
    document = client.get("/openapi.json").get_json()
    ok = document["paths"]["/restaurant/{restaurant_id}/item"]["get"]["responses"]["200"]
    schema: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize("query", ["", "?shape=nested", "?shape=normalized", "?all=true"])
def test_both_menu_shapes_match_the_document(
    client: FlaskClient, session: Session, query: str
) -> None:
    restaurant_id = add_restaurant(session)
    burger, sauce, ketchup = add_items(session, restaurant_id, ["Burger", "Sauce", "Ketchup"])
    link(session, restaurant_id, burger, [sauce])
    link(session, restaurant_id, sauce, [ketchup])
    session.commit()
    schema = menu_response_schema(client)
    assert [list(choice) for choice in schema["oneOf"]] == [["type", "items"], ["$ref"]]

    body = client.get(f"/restaurant/{restaurant_id}/item{query}").get_json()

    validate(client, schema, body)
    assert isinstance(body, dict) == (query == "?shape=normalized")


def test_a_normalized_menu_does_not_pass_as_the_nested_shape(client: FlaskClient) -> None:
    schema = menu_response_schema(client)
    with pytest.raises(Exception, match="is not valid under any of the given schemas"):
        validate(client, schema, {"entries": [1], "items": "not a list"})


def test_x_pagination_is_documented_as_the_json_object_sent(
    client: FlaskClient, session: Session
) -> None:
    for n in range(3):
        add_restaurant(session, f"R{n}")
    session.commit()
    document = client.get("/openapi.json").get_json()
    header = document["components"]["headers"]["PAGINATION"]
    assert "schema" not in header
    schema = header["content"]["application/json"]["schema"]

    sent = client.get("/restaurant?page_size=2").headers["X-Pagination"]

    value = json.loads(sent)
    validate(client, schema, value)
    assert value == {
        "total": 3,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 1,
        "next_page": 2,
    }


def test_path_ids_and_pages_are_documented_with_their_bounds(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    parameters = document["paths"]["/restaurant/{restaurant_id}/item/{item_id}"]["parameters"]
    assert {p["name"]: p["schema"] for p in parameters} == {
        "restaurant_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        "item_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }
    page = {p["name"]: p["schema"] for p in document["paths"]["/restaurant"]["get"]["parameters"]}
    assert page["page"]["maximum"] == 1_000_000
    assert page["page_size"]["maximum"] == 100
