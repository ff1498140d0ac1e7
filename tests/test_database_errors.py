"""A database that is locked, slow or unreachable: 503 with `Retry-After`, never 500.

On PostgreSQL the unreachable database is a TCP proxy the test has stopped; on SQLite, a
database file whose directory is missing. The circuit breaker opens on the first failed
connection, answers at once while open, and closes by itself when the database is back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.session import app_database, db_session
from presto.app import create_app
from presto.config import Settings
from presto.demo.loading import load_demo
from presto.storage import engine as engine_module
from presto.storage.availability import DatabaseAvailability
from presto.storage.engine import create_schema, make_engine, make_sessionmaker
from tests.helpers.data import add_items, add_key, add_restaurant, bearer, snapshot
from tests.helpers.problems import assert_problem
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import wait_until

# How long a blocked statement may wait in these tests (PostgreSQL statement_timeout,
# SQLite busy timeout).
SHORT_BOUND = 0.3


def test_a_write_blocked_past_the_statement_bound_is_503_and_changes_nothing(
    db_url: str, engine: Engine, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    restaurant_id = add_restaurant(session)
    [item_id] = add_items(session, restaurant_id, ["Soup"], price=500)
    key = bearer(add_key(session, restaurant_id))
    session.commit()
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", int(SHORT_BOUND * 1000))
    bounded = make_engine(db_url, statement_timeout=SHORT_BOUND)
    # Published in the write's transaction: no publisher thread outlives the test.
    settings = Settings(database_url=db_url, publish_on_write="transaction")
    client = create_app(settings, engine=bounded).test_client()
    before = snapshot(engine)

    with engine.connect() as holder, holder.begin():
        # Another writer holds the restaurant's row (PostgreSQL) or the write lock (SQLite).
        holder.execute(
            sa.text("UPDATE restaurant SET name = name WHERE id = :id"), {"id": restaurant_id}
        )
        started = time.monotonic()
        response = client.patch(
            f"/restaurant/{restaurant_id}/item/{item_id}", json={"price": 600}, headers=key
        )
        elapsed = time.monotonic() - started
        holder.rollback()

    assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert elapsed < 2.0
    assert snapshot(engine) == before
    retried = client.patch(
        f"/restaurant/{restaurant_id}/item/{item_id}", json={"price": 600}, headers=key
    )
    assert retried.status_code == 200
    assert retried.get_json()["price"] == 600
    bounded.dispose()


@dataclass
class Outage:
    """A database URL that cannot be reached until `restore()`."""

    url: str
    restore: Callable[[], None]


@pytest.fixture
def outage(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Outage]:
    """PostgreSQL behind a stopped proxy, or an SQLite file in a missing directory; both
    hold the demo menus once restored."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "absent" / "presto.db"

        def create_database() -> None:
            os.mkdir(path.parent)
            demo_engine = make_engine(f"sqlite:///{path}")
            create_schema(demo_engine)
            with make_sessionmaker(demo_engine)() as session, session.begin():
                load_demo(session)
            demo_engine.dispose()

        yield Outage(f"sqlite:///{path}", create_database)
        return
    request.getfixturevalue("demo")
    url = sa.make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxy.stop()
    try:
        yield Outage(url.set(port=proxy.port).render_as_string(hide_password=False), proxy.start)
    finally:
        proxy.stop()


def menu_call(client: FlaskClient) -> tuple[int, float, dict[str, str]]:
    started = time.monotonic()
    response = client.get("/restaurant/1/item")
    return response.status_code, time.monotonic() - started, dict(response.headers)


def test_an_unreachable_database_is_503_then_the_breaker_answers_at_once_and_recovers(
    outage: Outage,
) -> None:
    app = create_app(Settings(database_url=outage.url, db_connect_timeout=2))
    breaker = DatabaseAvailability(app_database(app).engine, probe_interval=0.1)
    client = app.test_client()
    try:
        first = client.get("/restaurant/1/item")
        assert_problem(first, 503)
        assert first.headers["Retry-After"] == "1"
        assert not breaker.available
        assert breaker.openings == 1
        status, elapsed, headers = menu_call(client)
        assert (status, headers["Retry-After"]) == (503, "1")
        assert elapsed < 0.1  # the breaker answers; no connection attempt

        outage.restore()
        wait_until(lambda: breaker.available, 5, "the breaker did not close")

        back = client.get("/restaurant/1/item")
        assert back.status_code == 200
        assert back.get_json()[0]["name"] == "Classic Burger"
        assert breaker.openings == 1
    finally:
        breaker.close()
        app_database(app).engine.dispose()


def test_a_pooled_connection_killed_by_the_database_is_replaced_without_an_error(
    db_url: str, engine: Engine, demo: None
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server process to end a connection")
    app = create_app(Settings(database_url=db_url))
    app_engine = app_database(app).engine
    breaker = DatabaseAvailability(app_engine, probe_interval=0.1)
    client = app.test_client()
    try:
        assert client.get("/restaurant/1/item").status_code == 200
        with app_engine.connect() as pooled:
            backend = pooled.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            ended = admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            assert ended.scalar_one() is True

        answers = [client.get("/restaurant/1/item").status_code for _ in range(3)]

        assert answers == [200, 200, 200]
        assert breaker.available
        assert breaker.openings == 0
    finally:
        breaker.close()
        app_engine.dispose()


def end_connection_at(
    app_engine: Engine, admin: Engine, marker: str, ended: list[int]
) -> Callable[..., None]:
    """A `before_cursor_execute` hook that ends the request's own connection from the
    server side (`pg_terminate_backend`) the first time a statement holds `marker`."""

    def hook(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if ended or marker not in statement:
            return
        backend = conn.connection.dbapi_connection.info.backend_pid
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        ended.append(backend)

    return hook


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_connection_ended_under_a_request_gets_it_run_again_once(
    db_url: str, engine: Engine, demo: None, session: Session, method: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server process to end a connection")
    app = create_app(Settings(database_url=db_url, publish_on_write="transaction"))
    app_engine = app_database(app).engine
    client = app.test_client()
    key = bearer(add_key(session))
    ended: list[int] = []
    hook = end_connection_at(app_engine, engine, "FROM item", ended)
    sa.event.listen(app_engine, "before_cursor_execute", hook)
    try:
        if method == "GET":
            answer = client.get("/restaurant/1/item?at=2026-12-01T12:00:00Z")
        else:
            answer = client.patch("/restaurant/1/item/1", json={"price": 4321}, headers=key)
    finally:
        sa.event.remove(app_engine, "before_cursor_execute", hook)
        app_engine.dispose()

    assert len(ended) == 1  # the first try lost its connection
    assert answer.status_code == 200, answer.get_json()
    if method == "PATCH":
        assert answer.get_json()["price"] == 4321
        with engine.connect() as connection:
            version = connection.execute(
                sa.text("SELECT menu_version FROM restaurant WHERE id = 1")
            )
            assert version.scalar_one() == 2  # applied once


def test_a_connection_ended_after_the_last_statement_leaves_the_answer_standing(
    db_url: str, engine: Engine, demo: None
) -> None:
    """The session's rollback at the end of the request meets a connection the server
    ended: the answer (already made) stands, and the connection is dropped."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has no server process to end a connection")
    app = create_app(Settings(database_url=db_url))
    app_engine = app_database(app).engine

    @app.after_request
    def end_the_connection(response: Any) -> Any:
        dbapi_connection: Any = db_session().connection().connection.dbapi_connection
        backend = dbapi_connection.info.backend_pid
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        return response

    client = app.test_client()
    try:
        answer = client.get("/restaurant/1/item?at=2026-12-01T12:00:00Z")
        again = client.get("/restaurant/2/item?at=2026-12-01T12:00:00Z")
    finally:
        app_engine.dispose()

    assert answer.status_code == 200
    assert answer.get_json()[0]["name"] == "Classic Burger"
    assert again.status_code == 200
