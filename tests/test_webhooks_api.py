"""Webhook endpoints through the API, and the outbox rows each kind of change writes in its
transaction (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.webhook_routes import ALLOW_PRIVATE
from presto.services import webhooks
from presto.storage.models import Item, Restaurant, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, link, snapshot
from tests.helpers.problems import assert_problem

PUBLIC = "https://1.1.1.1/hooks/menu"
ALL_EVENTS = ["menu.updated", "item.sold_out", "item.back_in_stock", "restaurant.deleted"]


@pytest.fixture
def admin(session: Session) -> dict[str, str]:
    return bearer(add_key(session))


def register(
    client: FlaskClient, headers: dict[str, str], path: str, **fields: Any
) -> dict[str, Any]:
    body = {"url": PUBLIC, "events": ALL_EVENTS, **fields}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def events(engine: Engine) -> list[tuple[str, dict[str, Any], list[int]]]:
    """Every outbox event in order: its type, payload and the endpoints owed it."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(WebhookEvent).order_by(WebhookEvent.id)).all()
        owed = connection.execute(sa.select(WebhookDelivery.event_id, WebhookDelivery.endpoint_id))
        by_event: dict[str, list[int]] = {}
        for event_id, endpoint_id in owed:
            by_event.setdefault(event_id, []).append(endpoint_id)
    return [(row.type, json.loads(row.body), sorted(by_event.get(row.id, []))) for row in rows]


def test_an_endpoint_is_made_with_a_secret_shown_once(
    client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    created = register(client, key, f"/restaurant/{diner}/webhooks", description="Aggregator")

    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) == 32
    assert (created["restaurant_id"], created["url"], created["enabled"]) == (diner, PUBLIC, True)
    shown = client.get(f"/restaurant/{diner}/webhooks/{created['id']}", headers=key).get_json()
    assert "secret" not in shown
    assert shown["description"] == "Aggregator"
    listed = client.get(f"/restaurant/{diner}/webhooks", headers=key).get_json()
    assert [endpoint["id"] for endpoint in listed] == [created["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://1.1.1.1/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "https://user:pass@1.1.1.1/hook",
        "ftp://1.1.1.1/hook",
        "https:///nohost",
        "https://[::1/hook",
        "https://1.1.1.1:70000/hook",
        "https://" + "a" * 300 + ".example/hook",
    ],
)
def test_unsafe_urls_are_refused(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str], url: str
) -> None:
    before = snapshot(engine)
    response = client.post(
        f"/restaurant/{diner}/webhooks", json={"url": url, "events": ["menu.updated"]}, headers=key
    )
    body = assert_problem(response, 422)
    assert list(body["errors"]) == ["url"]
    assert snapshot(engine) == before


def test_private_urls_are_allowed_with_the_option(
    app: Flask, client: FlaskClient, diner: int, key: dict[str, str]
) -> None:
    app.config[ALLOW_PRIVATE] = True
    created = register(client, key, f"/restaurant/{diner}/webhooks", url="http://127.0.0.1:9/x")
    assert created["url"] == "http://127.0.0.1:9/x"
    changed = client.patch(
        f"/restaurant/{diner}/webhooks/{created['id']}",
        json={"url": "http://169.254.169.254/"},
        headers=key,
    )
    assert changed.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"url": PUBLIC, "events": ["menu.deleted"]},
        {"url": PUBLIC, "events": []},
        {"url": PUBLIC},
        {"events": ["menu.updated"]},
        {"url": PUBLIC, "events": ["menu.updated"], "secret": "whsec_AAAA"},
        {"url": 5, "events": ["menu.updated"]},
    ],
)
def test_bad_registrations_are_422(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str], body: dict[str, Any]
) -> None:
    before = snapshot(engine)
    assert_problem(client.post(f"/restaurant/{diner}/webhooks", json=body, headers=key), 422)
    assert snapshot(engine) == before


def test_keys_reach_only_their_endpoints(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str], admin: dict[str, str]
) -> None:
    other = add_restaurant(session, "Other")
    session.commit()
    theirs = register(client, bearer(add_key(session, other)), f"/restaurant/{other}/webhooks")
    global_one = register(client, admin, "/webhooks")

    assert_problem(client.get(f"/restaurant/{diner}/webhooks/{theirs['id']}", headers=key), 404)
    assert_problem(client.get(f"/restaurant/{other}/webhooks", headers=key), 403)
    assert_problem(client.get("/webhooks", headers=key), 403)
    assert_problem(client.post("/webhooks", json={"url": PUBLIC}, headers=key), 403)
    assert_problem(client.get(f"/restaurant/{diner}/webhooks"), 401)
    listed = client.get("/webhooks", headers=admin).get_json()
    assert [e["id"] for e in listed] == [theirs["id"], global_one["id"]]
    assert global_one["restaurant_id"] is None


def test_a_menu_write_records_its_event_in_its_transaction(
    client: FlaskClient,
    engine: Engine,
    session: Session,
    diner: int,
    key: dict[str, str],
    admin: dict[str, str],
) -> None:
    [burger, fries] = add_items(session, diner, ["Burger", "Fries"])
    link(session, diner, burger, [fries])
    session.commit()
    answer = client.patch(f"/restaurant/{diner}/item/{burger}", json={"price": 5}, headers=key)
    assert answer.status_code == 200
    assert events(engine) == []  # nobody listens: nothing recorded
    mine = register(client, key, f"/restaurant/{diner}/webhooks", events=["menu.updated"])
    everyone = register(client, admin, "/webhooks")

    cycle = client.put(f"/restaurant/{diner}/item/{fries}/modifiers", json=[burger], headers=key)
    assert_problem(cycle, 409)
    assert events(engine) == []  # the write rolled back, and its event with it
    answer = client.patch(f"/restaurant/{diner}/item/{burger}", json={"price": 7}, headers=key)
    assert answer.status_code == 200

    [(kind, payload, owed)] = events(engine)
    assert (kind, owed) == ("menu.updated", sorted([mine["id"], everyone["id"]]))
    with engine.connect() as connection:
        version = connection.scalar(
            sa.select(Restaurant.menu_version).where(Restaurant.id == diner)
        )
    assert payload["data"] == {
        "restaurant_id": diner,
        "restaurant_external_id": None,
        "menu_version": version,
        "etag": f'"m{version}-0.1.0"',
        "changed_at": payload["data"]["changed_at"],
    }
    assert set(payload) == {"type", "timestamp", "data"}


def test_events_name_the_restaurants_external_id_read_with_the_version_bump(
    client: FlaskClient, engine: Engine, session: Session, diner: int, key: dict[str, str]
) -> None:
    session.execute(sa.update(Restaurant).where(Restaurant.id == diner).values(external_id="S-7"))
    [burger] = add_items(session, diner, ["Burger"])
    session.commit()
    register(client, key, f"/restaurant/{diner}/webhooks", events=["menu.updated", "item.sold_out"])
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        path = f"/restaurant/{diner}/item/{burger}/sold-out"
        answer = client.put(path, json={"until": "2999-01-01T10:00:00Z"}, headers=key)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert answer.status_code == 200

    recorded = events(engine)
    assert sorted(kind for kind, _payload, _owed in recorded) == ["item.sold_out", "menu.updated"]
    for _kind, payload, _owed in recorded:
        assert payload["data"]["restaurant_external_id"] == "S-7"
    # Read by the UPDATE that bumps the menu version (RETURNING), not by a SELECT of its own.
    own_read = re.compile(r"\s*SELECT (restaurant\.)?external_id\s+FROM restaurant", re.IGNORECASE)
    assert [s for s in statements if own_read.match(s)] == []
    bump = re.compile(r"UPDATE restaurant SET menu_version=.*RETURNING .*external_id", re.DOTALL)
    assert any(bump.match(s) for s in statements)


def test_sold_out_events_carry_ids_and_external_ids(
    client: FlaskClient, engine: Engine, session: Session, diner: int, key: dict[str, str]
) -> None:
    [burger] = add_items(session, diner, ["Burger"], external_id="PLU-1")
    session.commit()
    stock = ["item.sold_out", "item.back_in_stock"]
    hook = register(client, key, f"/restaurant/{diner}/webhooks", events=stock)
    until = "2999-01-01T10:00:00+00:00"
    path = f"/restaurant/{diner}/item/external/PLU-1/sold-out"
    assert client.put(path, json={"until": until}, headers=key).status_code == 200
    assert client.delete(path, headers=key).status_code == 200
    batch = {"items": [{"external_id": "PLU-1", "sold_out_until": until}]}
    assert client.patch(f"/restaurant/{diner}/items", json=batch, headers=key).status_code == 200
    cleared = {"sold_out_until": None}
    assert (
        client.patch(f"/restaurant/{diner}/item/{burger}", json=cleared, headers=key).status_code
        == 200
    )
    assert (
        client.patch(
            f"/restaurant/{diner}/item/{burger}", json={"price": 9}, headers=key
        ).status_code
        == 200
    )

    recorded = events(engine)
    assert [(kind, owed) for kind, _payload, owed in recorded] == [
        ("item.sold_out", [hook["id"]]),
        ("item.back_in_stock", [hook["id"]]),
        ("item.sold_out", [hook["id"]]),
        ("item.back_in_stock", [hook["id"]]),  # the price change is no stock event
    ]
    versions = [payload["data"].pop("menu_version") for _kind, payload, _owed in recorded]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert recorded[0][1]["data"] == {
        "restaurant_id": diner,
        "restaurant_external_id": None,
        "item_id": burger,
        "external_id": "PLU-1",
        "sold_out_until": "2999-01-01T10:00:00Z",
    }
    assert recorded[1][1]["data"]["sold_out_until"] is None


def test_a_deleted_restaurant_tells_its_endpoints(
    client: FlaskClient, engine: Engine, diner: int, key: dict[str, str], admin: dict[str, str]
) -> None:
    hook = register(client, key, f"/restaurant/{diner}/webhooks")
    assert client.delete(f"/restaurant/{diner}", headers=admin).status_code == 204

    [(kind, payload, owed)] = events(engine)
    assert (kind, owed) == ("restaurant.deleted", [hook["id"]])
    assert payload["data"]["restaurant_id"] == diner
    # The endpoint outlives its restaurant until the event is delivered; an admin removes it.
    assert client.get(f"/webhooks/{hook['id']}", headers=admin).get_json()["enabled"] is True
    assert client.delete(f"/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert events(engine) and not client.get("/webhooks", headers=admin).get_json()


def test_rotation_keeps_the_old_secret_signing_for_the_overlap(
    client: FlaskClient, session: Session, diner: int, key: dict[str, str]
) -> None:
    created = register(client, key, f"/restaurant/{diner}/webhooks")
    path = f"/restaurant/{diner}/webhooks/{created['id']}/rotate-secret"

    rotated = client.post(path, headers=key).get_json()

    assert rotated["secret"] != created["secret"]
    until = datetime.fromisoformat(rotated["previous_secret_until"])
    assert abs(until - datetime.now(UTC) - webhooks.SECRET_OVERLAP) < timedelta(seconds=30)
    endpoint = session.get(WebhookEndpoint, created["id"])
    assert endpoint is not None
    now = datetime.now(UTC)
    assert webhooks.signing_secrets(endpoint, now) == [rotated["secret"], created["secret"]]
    assert webhooks.signing_secrets(endpoint, until) == [rotated["secret"]]


def test_replay_ping_and_disabling(
    client: FlaskClient, engine: Engine, session: Session, diner: int, key: dict[str, str]
) -> None:
    [burger] = add_items(session, diner, ["Burger"])
    session.commit()
    hook = register(client, key, f"/restaurant/{diner}/webhooks")
    base = f"/restaurant/{diner}/webhooks/{hook['id']}"
    client.patch(f"/restaurant/{diner}/item/{burger}", json={"price": 3}, headers=key)
    [(_kind, _payload, _owed)] = events(engine)
    with engine.begin() as connection:
        connection.execute(sa.update(WebhookDelivery).values(state="failed", attempts=8))
    [delivery] = client.get(f"{base}/deliveries", headers=key).get_json()
    assert (delivery["state"], delivery["attempts"], delivery["event_type"]) == (
        "failed", 8, "menu.updated",
    )  # fmt: skip

    replayed = client.post(f"{base}/deliveries/{delivery['event_id']}/replay", headers=key)
    assert replayed.status_code == 202
    assert (replayed.get_json()["state"], replayed.get_json()["attempts"]) == ("pending", 0)
    assert_problem(client.post(f"{base}/deliveries/msg_nope/replay", headers=key), 404)
    pinged = client.post(f"{base}/ping", headers=key)
    assert pinged.status_code == 202
    assert events(engine)[-1][0] == "webhook.ping"

    off = client.patch(base, json={"enabled": False}, headers=key).get_json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled by its owner")
    states = [d["state"] for d in client.get(f"{base}/deliveries", headers=key).get_json()]
    assert states == ["cancelled", "cancelled"]
    assert_problem(client.post(f"{base}/ping", headers=key), 409)
    client.patch(f"/restaurant/{diner}/item/{burger}", json={"price": 4}, headers=key)
    assert len(events(engine)) == 2  # a disabled endpoint is owed nothing new
    on = client.patch(base, json={"enabled": True}, headers=key).get_json()
    assert (on["enabled"], on["disabled_reason"]) == (True, None)


def test_an_item_change_without_a_listener_writes_no_event(
    client: FlaskClient, engine: Engine, session: Session, diner: int, key: dict[str, str]
) -> None:
    other = add_restaurant(session, "Other")
    [burger] = add_items(session, diner, ["Burger"])
    session.commit()
    register(client, bearer(add_key(session, other)), f"/restaurant/{other}/webhooks")
    client.patch(f"/restaurant/{diner}/item/{burger}", json={"price": 3}, headers=key)
    assert events(engine) == []
    assert session.get(Item, burger) is not None
