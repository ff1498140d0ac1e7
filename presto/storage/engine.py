"""Engine and session set-up for SQLite and PostgreSQL.

The engine is created per process (after any fork), with a connection pool sized to the
number of threads that can use it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from presto.storage.models import Base
from presto.storage.roles import session_timeouts, set_timeout_per_transaction

# Key in `Session.info`: ids of the restaurants whose menu the transaction changed.
CHANGED_MENUS = "presto.changed_menus"
# The PostgreSQL notification channel of menu changes; the payload is the restaurant id.
NOTIFY_CHANNEL = "presto_menu"
# Where alembic records the revision a database is at (see `presto.storage.migrate`).
MIGRATION_VERSION_TABLE = "alembic_version"

# Seconds a SQLite connection waits for a lock held by another writer before failing.
SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    connect_timeout: float | None = None,
    statement_timeout: float | None = None,
    transaction_pooler: bool = False,
    pre_ping: bool = True,
) -> Engine:
    """Create an engine for `url` whose pool can serve `pool_size` threads at once.

    On PostgreSQL, `connect_timeout` bounds each connection attempt and `statement_timeout`
    every statement (seconds; None or 0: no bound), so an unreachable or stuck database
    costs a request seconds, not minutes. `transaction_pooler`: `url` leads to a
    transaction-mode pooler (`presto.storage.roles`). `pre_ping` checks each connection
    as it leaves the pool (one round trip); a caller that retries a failed step on its own
    can do without, and a lost connection is then replaced after its first error.
    """
    sa_url = sa.make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": pre_ping}
    if sa_url.get_backend_name() == "sqlite":
        # One connection per thread at most; SQLite needs no overflow.
        options.update(pool_size=pool_size, max_overflow=0)
        engine = sa.create_engine(sa_url, **options)
        sa.event.listen(engine, "connect", _configure_sqlite)
        return engine
    options.update(pool_size=pool_size, max_overflow=0, pool_timeout=10)
    options["connect_args"] = session_timeouts(
        connect_timeout, statement_timeout, transaction_pooler=transaction_pooler
    )
    engine = sa.create_engine(sa_url, **options)
    if transaction_pooler:
        set_timeout_per_transaction(engine, statement_timeout)
    return engine


def postgresql_timeouts(
    connect_timeout: float | None, statement_timeout: float | None
) -> dict[str, Any]:
    """libpq connection parameters for the two bounds (libpq takes whole seconds, 2 at least)."""
    return session_timeouts(connect_timeout, statement_timeout, transaction_pooler=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Turn on what SQLite leaves off: foreign keys (for ON DELETE CASCADE) and WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.close()


def make_sessionmaker(
    engine: Engine,
    *,
    on_menu_change: Callable[[int], None] | None = None,
    before_menu_commit: Callable[[Session, set[int]], None] | None = None,
) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit, for serialization.

    `on_menu_change(restaurant_id)` runs after each commit that bumped that restaurant's
    menu version (`presto.services.restaurants.bump_menu_version`), before the request is
    answered; `before_menu_commit(session, restaurant_ids)` runs inside such a transaction,
    just before it commits (it publishes the menus: `presto.menus.publishing`).
    """
    factory = sessionmaker(engine, expire_on_commit=False)

    if before_menu_commit is not None:

        @sa.event.listens_for(factory, "before_commit")
        def _menus_committing(session: Session) -> None:
            changed: set[int] | None = session.info.get(CHANGED_MENUS)
            if changed:
                before_menu_commit(session, set(changed))

    @sa.event.listens_for(factory, "after_commit")
    def _menus_committed(session: Session) -> None:
        changed: set[int] = session.info.pop(CHANGED_MENUS, set())
        if on_menu_change is not None:
            for restaurant_id in changed:
                on_menu_change(restaurant_id)

    @sa.event.listens_for(factory, "after_rollback")
    def _menus_rolled_back(session: Session) -> None:
        session.info.pop(CHANGED_MENUS, None)

    return factory


def create_schema(engine: Engine) -> None:
    """Create every missing table straight from the models, as tests do for speed.

    Databases that outlive a release are built and changed by presto.storage.migrate instead.
    """
    Base.metadata.create_all(engine)


def drop_schema(engine: Engine) -> None:
    """Drop every presto table and the migration history, leaving migrations a clean start."""
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {MIGRATION_VERSION_TABLE}"))
