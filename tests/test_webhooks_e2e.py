"""Webhooks end to end: a real `presto serve` delivering to a receiver on 127.0.0.1 that
verifies every request with the `standardwebhooks` reference library.

Each test runs on SQLite and PostgreSQL (the `db_url` fixture) except the one of two
instances sharing a database, which is PostgreSQL's deployment shape. The retry schedule
is shrunk with `--webhook-retry-scale`; `--webhook-allow-private` lets presto POST to
`http://127.0.0.1`.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.models import Restaurant, WebhookDelivery
from tests.helpers.data import add_key, bearer
from tests.helpers.http import request
from tests.helpers.server_process import Presto, running_presto
from tests.helpers.waiting import wait_until
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

EVENTS = ["menu.updated", "item.sold_out", "item.back_in_stock"]
SCALE = "0.001"  # 5 s, 5 min, 30 min ... become 5 ms, 0.3 s, 1.8 s


def serve(
    db_url: str, cwd: Path, *, reset_db: bool = False, port: int = 0
) -> AbstractContextManager[Presto]:
    """`running_presto` with webhooks to private addresses allowed and the schedule shrunk."""
    options = ("--webhook-allow-private", "--webhook-retry-scale", SCALE)
    return running_presto(db_url, cwd, *options, reset_db=reset_db, port=port)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def presto(db_url: str, tmp_path: Path) -> Iterator[tuple[tuple[str, int], dict[str, str]]]:
    """A running presto on the demo menus, and an admin's Authorization header."""
    engine = make_engine(db_url, pool_size=1)
    try:
        with serve(db_url, tmp_path, reset_db=True) as running:
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))
            yield running.address, admin
    finally:
        engine.dispose()
    assert "Traceback" not in running.server.output


def register(
    address: tuple[str, int],
    admin: dict[str, str],
    receiver: Receiver,
    path: str,
    events: list[str] = EVENTS,
) -> dict[str, Any]:
    """Register the receiver at `path`; it verifies with the secret presto made."""
    answer = request(address, "POST", path, {"url": receiver.url, "events": events}, admin)
    assert answer.status == 201, answer.body
    endpoint: dict[str, Any] = answer.json()
    receiver.secrets = [endpoint["secret"]]
    return endpoint


def metrics(address: tuple[str, int]) -> str:
    return request(address, "GET", "/metrics").body.decode()


def menu_version(db_url: str, restaurant_id: int) -> int:
    engine = make_engine(db_url, pool_size=1)
    try:
        with engine.connect() as connection:
            version = connection.scalar(
                sa.select(Restaurant.menu_version).where(Restaurant.id == restaurant_id)
            )
    finally:
        engine.dispose()
    assert version is not None
    return version


def test_retried_after_three_500s_with_the_same_webhook_id(
    presto: tuple[tuple[str, int], dict[str, str]], receiver: Receiver, db_url: str
) -> None:
    address, admin = presto
    endpoint = register(address, admin, receiver, "/restaurant/1/webhooks")
    receiver.answer = lambda n, _id: (500 if n < 3 else 200, None)

    assert request(address, "PATCH", "/restaurant/1/item/1", {"price": 1234}, admin).status == 200

    received = receiver.wait_for(4)
    assert [r.status for r in received] == [500, 500, 500, 200]
    assert len({r.webhook_id for r in received}) == 1
    assert all(r.verified_with == (0,) for r in received)
    event = received[0].body
    assert event["type"] == "menu.updated"
    assert event["data"]["restaurant_id"] == 1
    assert event["data"]["menu_version"] == menu_version(db_url, 1)
    # The schedule's third step (30 min) scaled: 1.8 s at least between attempts 3 and 4.
    assert received[3].at - received[2].at >= 1.7
    path = f"/restaurant/1/webhooks/{endpoint['id']}/deliveries"
    [delivery] = wait_until(
        lambda: [d for d in request(address, "GET", path, None, admin).json()
                 if d["state"] == "delivered"]
    )  # fmt: skip
    assert delivery["event_id"] == received[0].webhook_id
    assert (delivery["attempts"], delivery["last_status"]) == (4, 200)
    counted = [
        'presto_webhook_deliveries_total{outcome="retried"} 3.0',
        'presto_webhook_deliveries_total{outcome="delivered"} 1.0',
        "presto_webhook_retries_total 3.0",
        "presto_webhook_oldest_pending_seconds 0.0",
    ]
    wait_until(lambda: all(line in metrics(address) for line in counted))
    time.sleep(0.5)
    assert len(receiver.received) == 4


def test_410_disables_the_endpoint(
    presto: tuple[tuple[str, int], dict[str, str]], receiver: Receiver
) -> None:
    address, admin = presto
    endpoint = register(address, admin, receiver, "/webhooks")
    receiver.answer = lambda _n, _id: (410, None)

    assert request(address, "PATCH", "/restaurant/2/item/60", {"price": 99}, admin).status == 200

    receiver.wait_for(1)
    path = f"/webhooks/{endpoint['id']}"
    state = wait_until(
        lambda: (
            (body := request(address, "GET", path, None, admin).json())["enabled"] is False and body
        )
    )
    assert "410" in state["disabled_reason"]
    wait_until(lambda: "presto_webhook_endpoints_disabled 1.0" in metrics(address))
    assert request(address, "PATCH", "/restaurant/2/item/60", {"price": 98}, admin).status == 200
    time.sleep(1.5)
    assert len(receiver.received) == 1


def test_an_event_committed_before_a_sigkill_is_delivered_after_the_restart(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    with contextlib.ExitStack() as stack:
        engine = make_engine(db_url, pool_size=1)
        stack.callback(engine.dispose)
        presto = stack.enter_context(serve(db_url, tmp_path, reset_db=True))
        # Started again on the port it took at first.
        address, port = presto.address, presto.port
        with make_sessionmaker(engine)() as session, session.begin():
            admin = bearer(add_key(session))
        register(address, admin, receiver, "/restaurant/1/webhooks")
        # Killed as soon as the write is answered: its event is committed, and (but for a
        # rare race, when the write is tried again) not yet delivered.
        for price in range(500, 505):
            before = len(receiver.received)
            answer = request(address, "PATCH", "/restaurant/1/item/1", {"price": price}, admin)
            presto.stop()  # SIGKILL to its process group
            assert answer.status == 200
            if len(receiver.received) == before:
                break
            presto = stack.enter_context(serve(db_url, tmp_path, port=port))
            address = presto.address
        else:
            pytest.fail("every event was delivered before the kill")
        with engine.connect() as connection:
            pending = connection.scalar(
                sa.select(sa.func.count()).where(WebhookDelivery.state == "pending")
            )
        # This write's, and any an earlier killed relay had sent but not yet recorded.
        assert pending is not None and pending >= 1

        stack.enter_context(serve(db_url, tmp_path, port=port))

        # A claim the killed relay made keeps others off the delivery for its lease (20 s).
        version = menu_version(db_url, 1)
        delivered = wait_until(
            lambda: [r for r in receiver.received if r.body["data"]["menu_version"] == version],
            timeout=40,
        )
        assert [r.verified_with for r in delivered] == [(0,)]


def test_rotation_during_pending_retries_keeps_every_attempt_verifiable(
    presto: tuple[tuple[str, int], dict[str, str]], receiver: Receiver
) -> None:
    address, admin = presto
    endpoint = register(address, admin, receiver, "/restaurant/1/webhooks", ["item.sold_out"])
    # 503 with Retry-After: 2 s, then 500, then 200.
    receiver.answer = lambda n, _id: [(503, "2"), (500, None)][n] if n < 2 else (200, None)
    assert request(address, "PUT", "/restaurant/1/item/1/sold-out", {}, admin).status == 200
    receiver.wait_for(1)

    path = f"/restaurant/1/webhooks/{endpoint['id']}/rotate-secret"
    rotated = request(address, "POST", path, None, admin).json()
    receiver.secrets = [endpoint["secret"], rotated["secret"]]

    received = receiver.wait_for(3)
    assert received[1].at - received[0].at >= 1.9  # Retry-After honoured
    assert [r.status for r in received] == [503, 500, 200]
    assert len({r.webhook_id for r in received}) == 1
    assert received[0].verified_with == (0,)
    # After the rotation each attempt is signed with both: either secret verifies.
    assert [(r.signatures, r.verified_with) for r in received[1:]] == [(2, (0, 1))] * 2
    event = received[0].body
    assert event["type"] == "item.sold_out"
    assert event["data"]["item_id"] == 1
    assert event["data"]["sold_out_until"] == "9999-12-31T23:59:59Z"


def _spread_writes(
    addresses: list[tuple[str, int]], admin: dict[str, str], restaurants: list[int]
) -> None:
    """100 writes, each a new item, across the restaurants, alternating instances."""
    for n in range(100):
        restaurant_id = restaurants[n % len(restaurants)]
        answer = request(
            addresses[n % 2], "POST", f"/restaurant/{restaurant_id}/item", {"name": f"Dish {n}"},
            admin,
        )  # fmt: skip
        assert answer.status == 201, answer.body


def test_two_instances_deliver_every_event_once(
    db_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several instances share a PostgreSQL database")
    engine = make_engine(db_url, pool_size=1)
    try:
        with serve(db_url, tmp_path, reset_db=True) as first, serve(db_url, tmp_path) as second:
            servers = [first.server, second.server]
            addresses = [first.address, second.address]
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))
            for name in ("Fourth", "Fifth"):
                assert (
                    request(addresses[0], "POST", "/restaurant", {"name": name}, admin).status
                    == 201
                )
            register(addresses[1], admin, receiver, "/webhooks")

            _spread_writes(addresses, admin, [1, 2, 3, 4, 5])

            received = receiver.wait_for(100, timeout=60)
            time.sleep(1.5)  # anything sent twice would arrive by now
    finally:
        engine.dispose()
    assert len(receiver.received) == 100  # no attempt sent twice
    assert len({r.webhook_id for r in received}) == 100
    assert all(r.verified_with == (0,) and r.status == 200 for r in received)
    seen: defaultdict[int, list[int]] = defaultdict(list)
    for r in received:
        assert r.body["type"] == "menu.updated"
        seen[r.body["data"]["restaurant_id"]].append(r.body["data"]["menu_version"])
    for restaurant_id in range(1, 6):
        versions = seen[restaurant_id]
        assert len(versions) == 20
        # The last event seen carries the restaurant's last version (and a consumer that
        # keeps the newest version it has seen would end there whatever the order).
        assert versions[-1] == max(versions) == menu_version(db_url, restaurant_id)
        assert len(set(versions)) == 20
    for server in servers:
        assert "Traceback" not in server.output


def test_sigterm_stops_the_relay_cleanly(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        with serve(db_url, tmp_path, reset_db=True) as presto:
            address, server = presto.address, presto.server
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))
            register(address, admin, receiver, "/webhooks")
            receiver.answer = lambda _n, _id: (500, None)  # retries pending at the stop
            assert (
                request(address, "PATCH", "/restaurant/1/item/1", {"price": 7}, admin).status == 200
            )
            receiver.wait_for(2)

            server.terminate()

            assert server.wait() == 0
    finally:
        engine.dispose()
    assert "stopped" in server.output
    assert "Traceback" not in server.output and "relay round failed" not in server.output
