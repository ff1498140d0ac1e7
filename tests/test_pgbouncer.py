"""End to end through PgBouncer 1.18 in transaction mode (PostgreSQL only).

Two presto instances ("hosts") of two workers each share one database through a PgBouncer
in transaction mode (`--database-pooler transaction`), their listeners straight to
PostgreSQL (`--listen-url`): a write on one is shown by the other 50 ms later, every time,
with no 5xx. A listener pointed at the pooler by mistake is found out: `/readyz` and
`/metrics` say so, and nothing is served from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.helpers.http import request
from tests.helpers.postgres_cluster import PgBouncer, pgbouncer, with_port
from tests.helpers.scale_out import instance, prices
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.e2e

ROUNDS = 300
# Seconds between a write's answer on one instance and the read on the other.
READ_AFTER = 0.05
# Server connections PgBouncer may open to the database for all four workers.
POOL_SIZE = 4


@pytest.fixture
def bouncer(postgres_engine: Engine) -> Iterator[PgBouncer]:
    port = postgres_engine.url.port or 5432
    with pgbouncer(port, pool_size=POOL_SIZE) as running:
        yield running


def pooled_url(engine: Engine, bouncer: PgBouncer) -> str:
    return with_port(engine.url.render_as_string(hide_password=False), "127.0.0.1", bouncer.port)


def item_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT id FROM item WHERE restaurant_id = 1 AND name = :name"), {"name": name}
        ).scalar_one()
    return int(found)


def test_writes_on_one_instance_show_on_the_other_through_pgbouncer(
    postgres_engine: Engine, bouncer: PgBouncer, tmp_path: Path
) -> None:
    direct = postgres_engine.url.render_as_string(hide_password=False)
    pooled = pooled_url(postgres_engine, bouncer)
    roles = ("--database-pooler", "transaction", "--listen-url", direct)
    with (
        instance(
            tmp_path / "a", pooled, *roles, "--force",
            reset_db=True, key=True, key_database_url=direct,
        ) as a,
        instance(tmp_path / "b", pooled, *roles) as b,
    ):  # fmt: skip
        burger = item_id(postgres_engine, "Classic Burger")
        assert b.get().status == 200
        stale = []
        for price in range(1000, 1000 + ROUNDS):
            written = a.set_price(burger, price)
            assert written.status == 200, written.body
            time.sleep(READ_AFTER)
            shown = b.get()
            assert shown.status == 200, shown.body
            if prices(shown.json(), burger) != {price}:
                stale.append(price)
        servers = bouncer.admin("SHOW SERVERS")
        clients = bouncer.admin("SHOW CLIENTS")
        hits = b.metric("presto_menu_cache_hits_total")
        verified = (a.metric("presto_listener_verified"), b.metric("presto_listener_verified"))
    print(
        f"\n{ROUNDS} rounds: {len(stale)} stale; {len(clients)} presto connections to "
        f"PgBouncer, {len(servers)} PgBouncer server connections; b's cache hits {hits:g}"
    )
    assert stale == []
    assert all(status < 500 for status in a.statuses + b.statuses)
    # Server connections to presto's database (PgBouncer's own check of the `postgres`
    # database at start holds one more there).
    ours = [row for row in servers if row[2] == postgres_engine.url.database]
    assert 0 < len(ours) <= POOL_SIZE < len(clients)
    assert verified == (1.0, 1.0)


def test_a_listener_through_the_transaction_pooler_is_found_out(
    postgres_engine: Engine, bouncer: PgBouncer, tmp_path: Path
) -> None:
    direct = postgres_engine.url.render_as_string(hide_password=False)
    pooled = pooled_url(postgres_engine, bouncer)
    pooler = ("--database-pooler", "transaction")
    good = (*pooler, "--listen-url", direct, "--force")
    # The mistake: no --listen-url, so b's listener goes through the pooler too.
    with (
        instance(
            tmp_path / "a", pooled, *good, reset_db=True, key=True, key_database_url=direct
        ) as a,
        instance(tmp_path / "b", pooled, *pooler) as b,
    ):
        b.server.wait_for_line(r"does not receive its own notification", count=2, timeout=20)
        ready = b.get("/readyz")
        assert ready.status == 503
        assert "does not receive its own notification" in ready.json()["detail"]
        assert b.metric("presto_listener_verified") == 0.0
        burger = item_id(postgres_engine, "Classic Burger")
        stale = 0
        for price in range(2000, 2050):
            assert a.set_price(burger, price).status == 200
            time.sleep(READ_AFTER)
            shown = b.get()
            assert shown.status == 200
            stale += prices(shown.json(), burger) != {price}
        assert b.metric("presto_menu_cache_hits_total") == 0.0
    assert stale == 0


def test_the_menu_flow_through_pgbouncer(
    postgres_engine: Engine, bouncer: PgBouncer, tmp_path: Path
) -> None:
    """Creating, linking, refusing, retrying and deleting items, all through the pooler."""
    direct = postgres_engine.url.render_as_string(hide_password=False)
    pooled = pooled_url(postgres_engine, bouncer)
    roles = ("--database-pooler", "transaction", "--listen-url", direct, "--force")
    with instance(
        tmp_path, pooled, *roles, reset_db=True, key=True, key_database_url=direct
    ) as presto:
        auth = {"Authorization": f"Bearer {presto.key}"}
        burger = item_id(postgres_engine, "Classic Burger")
        items = "/restaurant/1/item"
        retry = {**auth, "Idempotency-Key": "pickles-1"}
        created = request(presto.address, "POST", items, {"name": "Pickles", "price": 50}, retry)
        assert created.status == 201, created.body
        again = request(presto.address, "POST", items, {"name": "Pickles", "price": 50}, retry)
        assert (again.status, again.json()["id"]) == (201, created.json()["id"])
        pickles = created.json()["id"]
        modifiers = request(presto.address, "GET", f"{items}/{burger}").json()["modifiers"]
        linked = request(
            presto.address, "PUT", f"{items}/{burger}/modifiers",
            [*(modifier["id"] for modifier in modifiers), pickles], auth,
        )  # fmt: skip
        assert linked.status == 200, linked.body
        assert prices(presto.get().json(), pickles) == {50}
        refused = request(presto.address, "PATCH", f"{items}/{pickles}", {"price": -1}, auth)
        assert refused.status == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert prices(presto.get().json(), pickles) == {50}
        assert request(presto.address, "DELETE", f"{items}/{pickles}", None, auth).status == 204
        assert prices(presto.get().json(), pickles) == set()
        assert all(status < 500 for status in presto.statuses)


def test_a_listener_through_a_session_mode_entry_hears_itself(
    postgres_engine: Engine, bouncer: PgBouncer, tmp_path: Path
) -> None:
    """The other way to keep the listener's session: a PgBouncer in session mode."""
    direct = postgres_engine.url.render_as_string(hide_password=False)
    with pgbouncer(postgres_engine.url.port or 5432, mode="session") as sessions:
        listen = with_port(direct, "127.0.0.1", sessions.port)
        options = ("--database-pooler", "transaction", "--listen-url", listen)
        pooled = pooled_url(postgres_engine, bouncer)
        with instance(tmp_path, pooled, *options, "--force", reset_db=True) as a:
            a.server.wait_for_line(r"listening for menu changes", count=2, timeout=20)
            assert a.get("/readyz").status == 200
            assert a.metric("presto_listener_verified") == 1.0
            assert all(a.get().status == 200 for _ in range(10))
            # Until every worker's counts reach the shared files.
            wait_until(
                lambda: a.metric("presto_menu_cache_hits_total") >= 1, 10, "no cache hit counted"
            )
            assert len(sessions.admin("SHOW SERVERS")) >= 2  # the two workers' listeners
