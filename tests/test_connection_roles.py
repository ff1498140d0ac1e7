"""The connections beside the pool: what a transaction-mode pooler changes in the pool's
connections and statements, and what `/readyz` says of the listener and the replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from presto.api.readiness_keys import CONNECTION_ROLES
from presto.serving.database_roles import LISTENER_UNVERIFIED, REPLICA_DOWN
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.storage import migrate
from presto.storage.engine import MIGRATION_VERSION_TABLE, make_engine
from presto.storage.roles import libpq_conninfo, session_timeouts


def test_a_transaction_pooler_gets_no_prepared_statements_and_no_startup_options() -> None:
    assert session_timeouts(2, 5, transaction_pooler=False) == {
        "connect_timeout": 2,
        "options": "-c statement_timeout=5000",
    }
    assert session_timeouts(2.5, 5, transaction_pooler=True) == {
        "connect_timeout": 3,
        "prepare_threshold": None,
    }


def test_several_hosts_pass_through_to_libpq() -> None:
    url = "postgresql+psycopg://presto@/menus?host=db1,db2&port=5432,5433&target_session_attrs=read-write"
    conninfo = libpq_conninfo(url, 2)
    assert conninfo.startswith("postgresql://presto@/menus?")
    assert "host=db1%2Cdb2" in conninfo and "port=5432%2C5433" in conninfo
    assert "target_session_attrs=read-write" in conninfo and "connect_timeout=2" in conninfo


def test_behind_a_transaction_pooler_each_transaction_sets_its_statement_timeout(
    db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("statement_timeout is PostgreSQL's")
    engine = make_engine(db_url, statement_timeout=1.5, transaction_pooler=True)
    try:
        with engine.connect() as connection:
            inside = connection.exec_driver_sql("SHOW statement_timeout").scalar()
            connection.rollback()
            connection.exec_driver_sql("SET statement_timeout = 0")  # a session setting...
            connection.commit()
            again = connection.exec_driver_sql("SHOW statement_timeout").scalar()
        assert (inside, again) == ("1500ms", "1500ms")  # ...each transaction sets its own
    finally:
        engine.dispose()


@pytest.fixture
def at_head(engine: Engine, db_url: str) -> Iterator[None]:
    """The test database stamped at the newest migration (readiness checks it); unstamped
    after."""
    migrate.stamp(db_url, migrate.heads()[0])
    yield
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {MIGRATION_VERSION_TABLE}"))


@pytest.mark.usefixtures("at_head")
def test_readyz_refuses_while_the_listener_does_not_hear_itself(client: FlaskClient) -> None:
    client.application.config[CONNECTION_ROLES] = lambda: (LISTENER_UNVERIFIED, None)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.content_type == "application/problem+json"
    assert answer.get_json()["detail"] == LISTENER_UNVERIFIED


@pytest.mark.usefixtures("at_head")
def test_readyz_notes_a_replica_that_is_down(client: FlaskClient) -> None:
    client.application.config[CONNECTION_ROLES] = lambda: (None, REPLICA_DOWN)
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.get_json()["database"] == f"ok; {REPLICA_DOWN}"
    client.application.config[CONNECTION_ROLES] = lambda: (None, None)
    assert client.get("/readyz").get_json()["database"] == "ok"


def test_sqlite_engines_ignore_the_pooler_setting(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()


def listener_state(conninfo: str, probe_conninfo: str) -> tuple[bool | None, bool]:
    """(verified, connected) of a listener a moment after it started."""
    listener = MenuChangeListener(conninfo, MenuGenerations(), probe_conninfo=probe_conninfo)

    async def scenario() -> tuple[bool | None, bool]:
        task = asyncio.create_task(listener.run())
        try:
            async with asyncio.timeout(10):
                while listener.verified is None:
                    await asyncio.sleep(0.02)
            return listener.verified, listener.connected
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return asyncio.run(scenario())


def test_the_listener_trusts_its_session_only_once_it_hears_itself(
    postgres_engine: Engine,
) -> None:
    conninfo = libpq_conninfo(postgres_engine.url.render_as_string(hide_password=False))
    assert listener_state(conninfo, conninfo) == (True, True)
    # Writes that notify another database than the one listened on are never heard.
    elsewhere = libpq_conninfo(
        postgres_engine.url.set(database="postgres").render_as_string(hide_password=False)
    )
    assert listener_state(conninfo, elsewhere) == (False, False)
