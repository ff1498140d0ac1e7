"""Restaurants through the API, and the kinds of request every write route refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.blueprint import pagination_metadata
from presto.services.limits import MAX_PAGE_SIZE
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, snapshot
from tests.helpers.problems import assert_problem


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    """The Authorization header of an admin key."""
    return bearer(add_key(session))


def test_create_and_read_a_restaurant(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.post("/restaurant", json={"name": "Sakura", "currency": "JPY"}, headers=admin)

    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "id": body["id"],
        "name": "Sakura",
        "currency": "JPY",
        "timezone": "UTC",
        "external_id": None,
    }
    assert response.headers["Location"] == f"/restaurant/{body['id']}"
    assert response.headers["ETag"] == '"r1"'
    fetched = client.get(response.headers["Location"])
    assert fetched.get_json() == body
    assert fetched.headers["ETag"] == '"r1"'
    assert client.get(f"/restaurant/{body['id']}/item").get_json() == []


def test_currency_defaults_to_usd(client: FlaskClient, admin: dict[str, str]) -> None:
    response = client.post("/restaurant", json={"name": "Diner"}, headers=admin)
    assert response.get_json()["currency"] == "USD"


def test_list_is_paginated(client: FlaskClient, session: Session) -> None:
    for n in range(25):
        add_restaurant(session, f"R{n}")
    session.commit()

    first = client.get("/restaurant")
    assert [r["name"] for r in first.get_json()] == [f"R{n}" for n in range(20)]
    assert json.loads(first.headers["X-Pagination"]) == {
        "total": 25,
        "total_pages": 2,
        "first_page": 1,
        "last_page": 2,
        "page": 1,
        "next_page": 2,
    }
    second = client.get("/restaurant?page=2&page_size=20")
    assert [r["name"] for r in second.get_json()] == [f"R{n}" for n in range(20, 25)]
    assert client.get("/restaurant?page=3").get_json() == []
    small = client.get("/restaurant?page=2&page_size=10").get_json()
    assert [r["name"] for r in small] == [f"R{n}" for n in range(10, 20)]


@pytest.mark.parametrize(
    "query", [f"page_size={MAX_PAGE_SIZE + 1}", "page_size=0", "page=0", "page=x"]
)
def test_page_size_is_bounded(client: FlaskClient, query: str) -> None:
    body = assert_problem(client.get(f"/restaurant?{query}"), 422)
    assert list(body["errors"]) == [query.split("=")[0]]


def test_patch_a_restaurant(client: FlaskClient, session: Session) -> None:
    restaurant_id = add_restaurant(session, "Diner")
    add_items(session, restaurant_id, ["Soup"])
    session.commit()
    key = bearer(add_key(session, restaurant_id))

    renamed = client.patch(f"/restaurant/{restaurant_id}", json={"name": "Bistro"}, headers=key)
    assert renamed.status_code == 200
    assert renamed.get_json()["name"] == "Bistro"
    assert renamed.headers["ETag"] == '"r2"'
    client.patch(f"/restaurant/{restaurant_id}", json={"currency": "EUR"}, headers=key)
    menu = client.get(f"/restaurant/{restaurant_id}/item").get_json()
    assert menu[0]["currency"] == "EUR"


def test_restaurant_conditional_requests(
    client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id = add_restaurant(session, "Diner")
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    url = f"/restaurant/{restaurant_id}"

    assert client.get(url, headers={"If-None-Match": '"r1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": 'W/"r1"'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"r0"'}).status_code == 200
    client.patch(url, json={"name": "Bistro"}, headers=key)
    before = snapshot(engine)
    stale = client.patch(url, json={"name": "Cafe"}, headers={**key, "If-Match": '"r1"'})
    assert assert_problem(stale, 412)["etag"] == '"r2"'
    assert snapshot(engine) == before
    admin = bearer(add_key(session))
    before = snapshot(engine)
    assert_problem(client.delete(url, headers={**admin, "If-Match": '"r1"'}), 412)
    assert snapshot(engine) == before
    assert client.delete(url, headers={**admin, "If-Match": '"r2"'}).status_code == 204
    assert_problem(client.get(url), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "A", "currency": "usd"}, "currency"),
        ({"name": "A", "currency": "EURO"}, "currency"),
        ({"name": "A", "id": 7}, "id"),
        ({"name": "A", "menu_version": 7}, "menu_version"),
    ],
)
def test_invalid_restaurant_is_422(
    client: FlaskClient,
    engine: Engine,
    admin: dict[str, str],
    body: dict[str, Any],
    field: str,
) -> None:
    before = snapshot(engine)
    problem = assert_problem(client.post("/restaurant", json=body, headers=admin), 422)
    assert list(problem["errors"]) == [field]
    assert snapshot(engine) == before


def test_unknown_restaurant_is_404(client: FlaskClient, admin: dict[str, str]) -> None:
    assert_problem(client.get("/restaurant/999"), 404)
    assert_problem(client.patch("/restaurant/999", json={"name": "A"}, headers=admin), 404)
    assert_problem(client.delete("/restaurant/999", headers=admin), 404)


# Every route that takes a JSON body: (method, path template, a valid body).
BODY_WRITES = [
    ("POST", "/restaurant", {"name": "New"}),
    ("PATCH", "/restaurant/{r}", {"name": "Renamed"}),
    ("POST", "/restaurant/{r}/item", {"name": "Fries"}),
    ("PATCH", "/restaurant/{r}/item/{i}", {"price": 5}),
    ("PUT", "/restaurant/{r}/item/{i}/modifiers", []),
    ("PUT", "/restaurant/{r}/menu", {"items": []}),
]

BAD_BODIES = {
    "malformed JSON": ({"Content-Type": "application/json"}, b'{"name": "A",', 400),
    "empty body": ({"Content-Type": "application/json"}, b"", 400),
    "not UTF-8": ({"Content-Type": "application/json"}, b'{"name": "\xff"}', 400),
    "form": ({"Content-Type": "application/x-www-form-urlencoded"}, b"name=A", 415),
    "text": ({"Content-Type": "text/plain"}, b'{"name": "A"}', 415),
    "no content type": ({}, b'{"name": "A"}', 415),
    "too large": ({"Content-Type": "application/json"}, b" " * (1024 * 1024 + 1), 413),
    "wrong JSON type": ({"Content-Type": "application/json"}, b'"a string"', 422),
}


@pytest.mark.parametrize("write", BODY_WRITES, ids=lambda write: f"{write[0]} {write[1]}")
@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_bad_bodies_are_refused_and_change_nothing(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    admin: dict[str, str],
    write: tuple[str, str, Any],
    kind: str,
) -> None:
    restaurant_id = add_restaurant(session, "Diner")
    (item_id,) = add_items(session, restaurant_id, ["Soup"])
    session.commit()
    headers, data, status = BAD_BODIES[kind]
    method, template, _valid = write
    before = snapshot(engine)

    response = client.open(
        template.format(r=restaurant_id, i=item_id),
        method=method,
        data=data,
        headers={**admin, **headers},
    )

    assert_problem(response, status)
    assert snapshot(engine) == before


def test_a_valid_body_per_route_works(
    client: FlaskClient, session: Session, admin: dict[str, str]
) -> None:
    restaurant_id = add_restaurant(session, "Diner")
    (item_id,) = add_items(session, restaurant_id, ["Soup"])
    session.commit()
    for method, template, body in BODY_WRITES:
        response = client.open(
            template.format(r=restaurant_id, i=item_id), method=method, json=body, headers=admin
        )
        assert response.status_code in {200, 201}, (template, response.get_json())


@pytest.mark.parametrize(
    ("page", "size", "total", "expected"),
    [
        (1, 20, 0, {"total": 0, "total_pages": 0}),
        (1, 2, 5, {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 1,
                   "next_page": 2}),
        (2, 2, 5, {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 2,
                   "previous_page": 1, "next_page": 3}),
        (3, 2, 5, {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3, "page": 3,
                   "previous_page": 2}),
        (4, 2, 5, {"total": 5, "total_pages": 3, "first_page": 1, "last_page": 3}),
    ],
)  # fmt: skip
def test_pagination_counts_first_last_previous_and_next_pages(
    page: int, size: int, total: int, expected: dict[str, int]
) -> None:
    assert json.loads(pagination_metadata(page, size, total)) == expected
