"""Fixtures: every database test runs once on SQLite and once on PostgreSQL.

PostgreSQL runs when `PRESTO_TEST_DATABASE_URL` names a database (`.ci/run` sets it);
without it those cases are skipped. Each test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty presto database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'presto-test.db'}"
    engine: Engine = request.getfixturevalue("postgres_engine")
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test database, with every table created."""
    engine = make_engine(db_url, pool_size=5)
    create_schema(engine)
    yield engine
    engine.dispose()


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
