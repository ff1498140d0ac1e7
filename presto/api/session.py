"""The request's database session: opened on first use, closed when the request ends.

The factory calls `init_app` with the engine; routes call `db_session()`. Keeping this here,
as Flask's tutorial keeps `get_db` in `flaskr/db.py`, means nothing imports the factory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from presto.api.retry import track_commits
from presto.storage.engine import make_sessionmaker

EXTENSION = "presto.db"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Database:
    """The engine and session factory of one app."""

    engine: Engine
    sessionmaker: sessionmaker[Session]


def init_app(
    app: Flask,
    engine: Engine,
    *,
    on_menu_change: Callable[[int], None] | None = None,
    before_menu_commit: Callable[[Session, set[int]], None] | None = None,
) -> Database:
    """Give `app` its database; `on_menu_change(restaurant_id)` runs after each commit that
    changed that restaurant's menu, `before_menu_commit` inside it before it commits."""
    database = Database(
        engine,
        make_sessionmaker(
            engine, on_menu_change=on_menu_change, before_menu_commit=before_menu_commit
        ),
    )
    track_commits(database.sessionmaker)
    app.extensions[EXTENSION] = database
    app.teardown_appcontext(_close_session)
    return database


def app_database(app: Flask) -> Database:
    """The database `init_app` gave `app`."""
    database: Database = app.extensions[EXTENSION]
    return database


def db_session() -> Session:
    """The current request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = app_database(current_app).sessionmaker()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except DBAPIError as exc:
        # The connection died after the request's last statement (a restart, a pooler,
        # `pg_terminate_backend`): its transaction ended with it, and the answer stands.
        log.warning("database connection lost after the last statement: %s", exc.orig)
        session.invalidate()
