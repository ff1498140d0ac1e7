"""Fixtures: every database test runs once on SQLite and once on PostgreSQL.

PostgreSQL runs when `PRESTO_TEST_DATABASE_URL` names a database (`.ci/run` sets it);
without it those cases are skipped. Each test starts from empty tables.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.app import create_app
from presto.config import Settings
from presto.demo.loading import load_demo
from presto.storage.engine import create_schema, drop_schema, make_engine, make_sessionmaker
from presto.storage.models import Base
from tests.helpers.data import add_key, add_restaurant, bearer

POSTGRES_URL_VARIABLE = "PRESTO_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    """One engine on the test PostgreSQL database for the whole run, schema created fresh."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    engine = make_engine(url, pool_size=5)
    drop_schema(engine)
    create_schema(engine)
    yield engine
    drop_schema(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every table and no rows, made once: copying it is some 30 times
    quicker than creating the tables for each test."""
    path = tmp_path_factory.mktemp("template") / "presto-test.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a presto database with every table and no rows, on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "presto-test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    engine: Engine = request.getfixturevalue("postgres_engine")
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, with every table created."""
    engine = make_engine(db_url, pool_size=5)
    if engine.dialect.name == "sqlite":
        # No fsync per commit: what these tests check does not depend on surviving a power
        # loss, and syncing took a quarter of the quick loop's time.
        sa.event.listen(engine, "connect", _no_sync)
    create_schema(engine)
    yield engine
    engine.dispose()


def _no_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data directly."""
    with make_sessionmaker(engine)() as session:
        yield session


@pytest.fixture
def app(engine: Engine, db_url: str) -> Flask:
    """The Flask app on the test database."""
    # Menus published in the write's transaction: a test sees the database settle with
    # each answer (tests/test_publishing.py covers publishing in the background).
    app = create_app(Settings(database_url=db_url, publish_on_write="transaction"), engine=engine)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def demo(engine: Engine) -> None:
    """The demo menus, as `--reset-db` loads them."""
    with make_sessionmaker(engine)() as session, session.begin():
        load_demo(session)


@pytest.fixture
def diner(session: Session) -> int:
    """An empty restaurant."""
    restaurant_id = add_restaurant(session, "Diner")
    session.commit()
    return restaurant_id


@pytest.fixture
def key(session: Session, diner: int) -> dict[str, str]:
    """The Authorization header of the diner's key."""
    return bearer(add_key(session, diner))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test is also slow: starting presto takes seconds, so the quick loop
    (`-m "not slow"`) leaves them all out."""
    for item in items:
        if item.get_closest_marker("e2e") is not None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
