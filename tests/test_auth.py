"""Writes need a bearer key of the right scope; reads need none. Every write route is tried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.auth import GUARDED
from presto.services import keys
from presto.storage.models import Item, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, link, snapshot
from tests.helpers.problems import assert_problem


@dataclass(frozen=True)
class World:
    """Two restaurants with an item each, and keys."""

    mine: int
    theirs: int
    my_item: int
    their_item: int
    my_key: str
    their_key: str
    admin_key: str
    revoked_key: str
    # A webhook endpoint of `mine` with one delivered event, and an admin's endpoint.
    my_endpoint: int = 0
    admin_endpoint: int = 0
    event: str = ""


@pytest.fixture
def world(session: Session) -> World:
    mine = add_restaurant(session, "Mine")
    theirs = add_restaurant(session, "Theirs")
    my_item, my_other = add_items(session, mine, ["Burger", "Ketchup"])
    (their_item,) = add_items(session, theirs, ["Pizza"])
    # Known by an external id and sold out, so that every sold-out call changes something.
    burger = session.get(Item, my_item)
    assert burger is not None
    burger.external_id = "mine-1"
    burger.sold_out_until = datetime(2999, 1, 1, tzinfo=UTC)
    link(session, mine, my_item, [my_other])
    session.commit()
    revoked = keys.create_key(session, restaurant_id=mine)
    keys.revoke_key(session, revoked.row.id)
    my_endpoint, admin_endpoint, event = add_webhooks(session, mine)
    return World(
        my_endpoint=my_endpoint,
        admin_endpoint=admin_endpoint,
        event=event,
        mine=mine,
        theirs=theirs,
        my_item=my_item,
        their_item=their_item,
        my_key=add_key(session, mine),
        their_key=add_key(session, theirs),
        admin_key=add_key(session),
        revoked_key=revoked.secret,
    )


# A webhook endpoint's registration (a public address: no name to resolve in a test).
HOOK = {"url": "https://1.1.1.1/hook", "events": ["menu.updated"]}


def add_webhooks(session: Session, restaurant_id: int) -> tuple[int, int, str]:
    """An endpoint of the restaurant that was delivered one event, and an admin's."""
    now = datetime.now(UTC)
    endpoints = [
        WebhookEndpoint(
            restaurant_id=owner,
            url="https://1.1.1.1/hook",
            events=["menu.updated"],
            secret="whsec_" + "A" * 44,
            enabled=True,
            created_at=now,
        )
        for owner in (restaurant_id, None)
    ]
    session.add_all(endpoints)
    session.flush()
    event = WebhookEvent(id="msg_1", type="menu.updated", body="{}", created_at=now)
    session.add(event)
    session.flush()
    session.add(
        WebhookDelivery(
            endpoint_id=endpoints[0].id,
            event_id=event.id,
            state="delivered",
            attempts=1,
            created_at=now,
        )
    )
    session.commit()
    return endpoints[0].id, endpoints[1].id, event.id


# (method, path template, JSON body, admin only): every write route of the API.
WRITES: list[tuple[str, str, Any, bool]] = [
    ("POST", "/restaurant", {"name": "New"}, True),
    ("PATCH", "/restaurant/{r}", {"name": "Renamed"}, False),
    ("DELETE", "/restaurant/{r}", None, True),
    ("POST", "/restaurant/{r}/item", {"name": "Fries"}, False),
    ("PATCH", "/restaurant/{r}/item/{i}", {"price": 5}, False),
    ("DELETE", "/restaurant/{r}/item/{i}", None, False),
    ("PUT", "/restaurant/{r}/item/{i}/modifiers", [], False),
    ("PUT", "/restaurant/{r}/menu", {"items": []}, False),
    ("PATCH", "/restaurant/{r}/items", {"items": [{"id": "{i}", "price": 5}]}, False),
    ("PUT", "/restaurant/{r}/item/{i}/sold-out", {}, False),
    ("DELETE", "/restaurant/{r}/item/{i}/sold-out", None, False),
    ("PUT", "/restaurant/{r}/item/external/mine-1/sold-out", {}, False),
    ("DELETE", "/restaurant/{r}/item/external/mine-1/sold-out", None, False),
    ("POST", "/restaurant/{r}/webhooks", HOOK, False),
    ("PATCH", "/restaurant/{r}/webhooks/{e}", {"description": "Kitchen"}, False),
    ("DELETE", "/restaurant/{r}/webhooks/{e}", None, False),
    ("POST", "/restaurant/{r}/webhooks/{e}/rotate-secret", None, False),
    ("POST", "/restaurant/{r}/webhooks/{e}/deliveries/{v}/replay", None, False),
    ("POST", "/restaurant/{r}/webhooks/{e}/ping", None, False),
    ("POST", "/webhooks", HOOK, True),
    ("PATCH", "/webhooks/{a}", {"description": "Kitchen"}, True),
    ("DELETE", "/webhooks/{a}", None, True),
    ("POST", "/webhooks/{a}/rotate-secret", None, True),
    ("POST", "/webhooks/{e}/deliveries/{v}/replay", None, True),
    ("POST", "/webhooks/{a}/ping", None, True),
]


def send(
    client: FlaskClient, world: World, write: tuple[str, str, Any, bool], **headers: str
) -> Any:
    method, template, body, _admin = write
    path = template.format(
        r=world.mine, i=world.my_item, e=world.my_endpoint, a=world.admin_endpoint, v=world.event
    )
    if isinstance(body, dict) and "items" in body and body["items"]:
        # The batch names the item by id.
        body = {"items": [{**change, "id": world.my_item} for change in body["items"]]}
    return client.open(path, method=method, json=body, headers=headers)


def test_every_write_route_is_listed_and_guarded(app: Flask) -> None:
    routes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"GET", "HEAD", "OPTIONS"}
    }
    listed = {
        (
            method,
            template.replace("{r}", "<int:restaurant_id>")
            .replace("{i}", "<int:item_id>")
            .replace("mine-1", "<external_id>")
            .replace("{e}", "<int:endpoint_id>")
            .replace("{a}", "<int:endpoint_id>")
            .replace("{v}", "<event_id>"),
        )
        for method, template, _body, _admin in WRITES
    }
    assert routes == listed
    for rule in app.url_map.iter_rules():
        if rule.methods and rule.methods - {"GET", "HEAD", "OPTIONS"}:
            assert getattr(app.view_functions[rule.endpoint], GUARDED, False), rule.rule


@pytest.mark.parametrize("write", WRITES, ids=lambda write: f"{write[0]} {write[1]}")
@pytest.mark.parametrize("credential", ["none", "unknown", "revoked", "basic", "empty"])
def test_no_or_bad_key_is_401(
    client: FlaskClient,
    engine: Engine,
    world: World,
    write: tuple[str, str, Any, bool],
    credential: str,
) -> None:
    headers = {
        "none": {},
        "unknown": bearer("presto_" + "x" * 43),
        "revoked": bearer(world.revoked_key),
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty": {"Authorization": "Bearer "},
    }[credential]
    before = snapshot(engine)

    response = send(client, world, write, **headers)

    body = assert_problem(response, 401)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) == (credential in {"unknown", "revoked"})
    assert "API key" in body["detail"]
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("{key}", "The Authorization header has no scheme: send the API key as Bearer <key>."),
        ("  {key}\t", "The Authorization header has no scheme: send the API key as Bearer <key>."),
        ("Token {key}", "The Authorization header's scheme is not Bearer: send the API key as "
         "Bearer <key>."),
        ("Basic dXNlcjpwYXNz", "The Authorization header's scheme is not Bearer: send the API "
         "key as Bearer <key>."),
        ("", "This request needs an API key: Authorization: Bearer <key>."),
        ("Bearer", "This request needs an API key: Authorization: Bearer <key>."),
    ],
    ids=["key alone", "key alone, spaced", "other scheme", "basic", "empty", "bearer alone"],
)  # fmt: skip
def test_a_key_without_the_bearer_scheme_is_told_what_to_send(
    client: FlaskClient, engine: Engine, world: World, value: str, detail: str
) -> None:
    before = snapshot(engine)
    path = f"/restaurant/{world.mine}/item/{world.my_item}"
    authorization = value.format(key=world.my_key)
    response = client.patch(path, json={"price": 5}, headers={"Authorization": authorization})
    body = assert_problem(response, 401)
    assert body["detail"] == detail
    assert world.my_key not in response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="presto"'
    assert snapshot(engine) == before


@pytest.mark.parametrize("write", WRITES, ids=lambda write: f"{write[0]} {write[1]}")
def test_another_restaurants_key_is_403(
    client: FlaskClient, engine: Engine, world: World, write: tuple[str, str, Any, bool]
) -> None:
    before = snapshot(engine)
    response = send(client, world, write, **bearer(world.their_key))
    assert_problem(response, 403)
    assert snapshot(engine) == before


@pytest.mark.parametrize("write", WRITES, ids=lambda write: f"{write[0]} {write[1]}")
def test_own_key_writes_except_admin_routes(
    client: FlaskClient, engine: Engine, world: World, write: tuple[str, str, Any, bool]
) -> None:
    before = snapshot(engine)
    response = send(client, world, write, **bearer(world.my_key))
    if write[3]:
        assert_problem(response, 403)
        assert snapshot(engine) == before
    else:
        assert response.status_code in {200, 201, 202, 204}, response.get_json()
        assert snapshot(engine) != before


@pytest.mark.parametrize("write", WRITES, ids=lambda write: f"{write[0]} {write[1]}")
def test_admin_key_writes_everywhere(
    client: FlaskClient, engine: Engine, world: World, write: tuple[str, str, Any, bool]
) -> None:
    before = snapshot(engine)
    response = send(client, world, write, **bearer(world.admin_key))
    assert response.status_code in {200, 201, 202, 204}, response.get_json()
    assert snapshot(engine) != before


def test_a_key_cannot_reach_another_restaurants_item_through_its_own_path(
    client: FlaskClient, engine: Engine, world: World
) -> None:
    before = snapshot(engine)
    response = client.patch(
        f"/restaurant/{world.mine}/item/{world.their_item}",
        json={"price": 1},
        headers=bearer(world.my_key),
    )
    assert_problem(response, 404)
    assert snapshot(engine) == before


def test_auth_comes_before_validation(client: FlaskClient, world: World) -> None:
    response = client.post(f"/restaurant/{world.mine}/item", data="{not json")
    assert_problem(response, 401)


def test_reads_are_public(client: FlaskClient, world: World) -> None:
    for path in [
        "/restaurant",
        f"/restaurant/{world.mine}",
        f"/restaurant/{world.mine}/item",
        f"/restaurant/{world.mine}/item/{world.my_item}",
        f"/restaurant/{world.mine}/menu",
        "/openapi.json",
        "/docs",
    ]:
        assert client.get(path).status_code == 200, path


def test_deleting_a_restaurant_deletes_its_keys(
    client: FlaskClient, session: Session, world: World
) -> None:
    response = client.delete(f"/restaurant/{world.mine}", headers=bearer(world.admin_key))
    assert response.status_code == 204
    assert {row.restaurant_id for row in keys.list_keys(session)} == {None, world.theirs}
    # A new restaurant never gets the old id, so no old key can reach it.
    created = client.post("/restaurant", json={"name": "New"}, headers=bearer(world.admin_key))
    assert created.get_json()["id"] > world.theirs
