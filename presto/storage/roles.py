"""The connections presto makes to PostgreSQL, by role, and what a pooler in front allows.

- The pool (`--database-url`): reads and writes in transactions. Behind a transaction-mode
  pooler (`--database-pooler transaction`, e.g. PgBouncer 1.18) a transaction may run on any
  server connection, so nothing may outlive one: psycopg never prepares a statement
  (`prepare_threshold=None`), no startup `options` are sent (PgBouncer refuses them) and
  `statement_timeout` is `SET LOCAL` at the start of each transaction instead.
- The listener (`--listen-url`, else the pool's URL): one session that `LISTEN`s; a
  pooler in transaction mode loses its notifications, which the listener finds out by
  sending itself one (`presto.serving.generations`).
- The replica (`--replica-url`): reads of published menus; never written to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from presto.config import Settings
from presto.storage.checks import DatabaseConfigError, parse_url

TRANSACTION_POOLER = "transaction"


@dataclass(frozen=True)
class ConnectionRoles:
    """The URLs of the three roles (SQLAlchemy form) and the pool's pooler mode."""

    pool_url: str
    listen_url: str
    replica_url: str | None
    transaction_pooler: bool

    @classmethod
    def of(cls, settings: Settings) -> ConnectionRoles:
        return cls(
            settings.database_url,
            settings.listen_url or settings.database_url,
            settings.replica_url or None,
            settings.database_pooler == TRANSACTION_POOLER,
        )


def check_roles(settings: Settings) -> None:
    """`DatabaseConfigError` for a listen or replica URL that is not PostgreSQL, or one
    given while the database is not PostgreSQL (SQLite has no other connections)."""
    pool_backend = parse_url(settings.database_url).get_backend_name()
    for option, url in (
        ("--listen-url", settings.listen_url),
        ("--replica-url", settings.replica_url),
    ):
        if not url:
            continue
        if pool_backend != "postgresql" or parse_url(url).get_backend_name() != "postgresql":
            raise DatabaseConfigError(f"{option} needs PostgreSQL for it and --database-url")
    if settings.database_pooler == TRANSACTION_POOLER and pool_backend != "postgresql":
        raise DatabaseConfigError("--database-pooler transaction needs a PostgreSQL --database-url")


def libpq_conninfo(url: str, connect_timeout: float = 0) -> str:
    """An SQLAlchemy URL as libpq and psycopg take it (no driver suffix); several hosts
    (`?host=a,b&port=5432,5433`) pass through."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    if connect_timeout:
        timeout = str(max(2, math.ceil(connect_timeout)))
        parsed = parsed.update_query_dict({"connect_timeout": timeout})
    return parsed.render_as_string(hide_password=False)


def session_timeouts(
    connect_timeout: float | None, statement_timeout: float | None, *, transaction_pooler: bool
) -> dict[str, Any]:
    """libpq connection parameters for the two bounds (libpq takes whole seconds, 2 at
    least); behind a transaction pooler no `options` (the pooler refuses them) and no
    prepared statements."""
    args: dict[str, Any] = {}
    if connect_timeout:
        args["connect_timeout"] = max(2, math.ceil(connect_timeout))
    if transaction_pooler:
        args["prepare_threshold"] = None
    elif statement_timeout:
        args["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    return args


def set_timeout_per_transaction(engine: Engine, statement_timeout: float | None) -> None:
    """`SET LOCAL statement_timeout` as each transaction begins: behind a transaction
    pooler a session setting would stay on a server connection other clients use next."""
    if not statement_timeout:
        return
    statement = f"SET LOCAL statement_timeout = {int(statement_timeout * 1000)}"

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(statement)
