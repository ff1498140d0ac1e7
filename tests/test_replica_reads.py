"""End to end with a streaming replica (PostgreSQL only): published menus are read from
`--replica-url` while it is current, from the primary when it lags or is down, and no
read after a write ever shows the menu from before it.

The replica is a `pg_basebackup -R` of the test's PostgreSQL, started on a free port.
`--cache-bytes 1` keeps no menu in memory, so every read is a published read and goes
through the replica's routing; one worker, so that every read after the first of a
version finds that worker's floor, and menus published in the write's transaction, so
that the first read finds the new version published on the primary.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.helpers.postgres_cluster import standby_of, with_port
from tests.helpers.scale_out import Instance, instance, prices
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.e2e

ROUNDS = 100
# Reads after each write.
READS = 3
RESTAURANTS = (1, 2, 3)


def reads(presto: Instance) -> dict[str, float]:
    return {
        "replica": presto.metric("presto_published_reads_total", source="replica"),
        "primary": presto.metric("presto_published_reads_total", source="primary"),
        "behind": presto.metric("presto_replica_fallbacks_total", reason="behind"),
        "unavailable": presto.metric("presto_replica_fallbacks_total", reason="unavailable"),
    }


def wait_for_replica_reads(presto: Instance, timeout: float = 20) -> None:
    """Read the menus until the replica serves them (it has replayed the reset)."""

    def replica_served() -> bool:
        if reads(presto)["replica"] >= 20:
            return True
        for restaurant_id in RESTAURANTS:
            assert presto.get(f"/restaurant/{restaurant_id}/item").status == 200
        return False

    wait_until(replica_served, timeout, lambda: reads(presto))


def test_replica_reads_fall_back_to_the_primary_when_behind_or_down(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    primary = postgres_engine.url.render_as_string(hide_password=False)
    with standby_of(postgres_engine.url.port or 5432) as standby:
        replica = with_port(primary, "127.0.0.1", standby.port)
        options = ["--replica-url", replica, "--cache-bytes", "1", "--force"]
        options += ["--publish-on-write", "transaction"]
        with instance(tmp_path, primary, *options, workers=1, reset_db=True, key=True) as presto:
            wait_for_replica_reads(presto)
            served = reads(presto)
            assert presto.get("/readyz").json()["database"] == "ok"

            # Paused: the replica stays at the menu from before every write that follows.
            database = postgres_engine.url.database or "postgres"
            standby.execute("SELECT pg_wal_replay_pause()", database)
            with postgres_engine.connect() as connection:
                burger = (
                    connection.execute(
                        sa.text("SELECT id FROM item WHERE restaurant_id = 1 AND name = 'Burger'")
                    ).scalar()
                    or connection.execute(
                        sa.text("SELECT min(id) FROM item WHERE restaurant_id = 1")
                    ).scalar_one()
                )
            stale = checked = 0
            for price in range(3000, 3000 + ROUNDS):
                assert presto.set_price(burger, price).status == 200
                for _ in range(READS):
                    shown = presto.get()
                    assert shown.status == 200
                    checked += 1
                    stale += prices(shown.json(), burger) != {price}
            paused = reads(presto)

            # Down: reads go on, from the primary; readiness and metrics say so.
            standby.stop("immediate")
            for price in range(4000, 4010):
                assert presto.set_price(burger, price).status == 200
                for _ in range(READS):
                    shown = presto.get()
                    assert shown.status == 200
                    stale += prices(shown.json(), burger) != {price}
                    checked += 1
            ready = presto.get("/readyz")
            down = reads(presto)
            available = presto.metric("presto_replica_available")
    print(
        f"\nreplica serving: {served}\npaused, {ROUNDS} writes: {paused}\ndown: {down}\n"
        f"{checked} reads after writes, {stale} stale"
    )
    assert stale == 0
    assert served["replica"] >= 20
    # The first read after each write went to the primary; the others found the replica
    # behind (older than the version read from the primary) and went there too.
    assert paused["replica"] == served["replica"]
    assert paused["behind"] - served["behind"] == (READS - 1) * ROUNDS
    assert down["unavailable"] >= 1
    assert ready.status == 200
    assert "replica unavailable" in ready.json()["database"]
    assert available == 0.0
    assert all(status < 500 for status in presto.statuses)
