"""Checks that a database URL names a database presto can use, before anything uses it.

A mistyped URL, a driver that is not installed, a missing directory or an unreachable
server becomes one `DatabaseConfigError` line for the operator instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
# Seconds to wait for a PostgreSQL server before calling it unreachable.
CONNECT_TIMEOUT = 5


class DatabaseConfigError(Exception):
    """A database URL that cannot be used; the message is one line for the operator."""


def parse_url(url: str) -> URL:
    """`url` parsed, its backend supported and its driver importable."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise DatabaseConfigError(
            f"{url!r} is not a database URL; expected e.g. sqlite:///presto.db or "
            "postgresql+psycopg://user@host:5432/presto"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseConfigError(
            f"unsupported database {backend!r} in {parsed.render_as_string()}: presto runs "
            "on SQLite (sqlite:///FILE) and PostgreSQL (postgresql+psycopg://...)"
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise DatabaseConfigError(
            f"unknown or missing database driver {parsed.drivername!r}; "
            "use sqlite:// or postgresql+psycopg://"
        ) from None
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file of an SQLite URL; None for an in-memory database."""
    if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(url.database)


def check_database(url: str, *, must_exist: bool = False) -> None:
    """Raise `DatabaseConfigError` unless presto can connect to `url`.

    With `must_exist`, an SQLite file that is not there yet is an error rather than a new
    empty database: commands that only read must not create one.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        if not path.parent.is_dir():
            raise DatabaseConfigError(
                f"directory {path.parent} of the SQLite database does not exist"
            )
        if must_exist and not path.exists():
            raise DatabaseConfigError(f"no database at {path}")
        return
    if parsed.get_backend_name() == "postgresql":
        engine = sa.create_engine(
            parsed, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
        try:
            with engine.connect():
                pass
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            where = parsed.render_as_string(hide_password=True)
            raise DatabaseConfigError(f"cannot connect to {where}: {reason}") from None
        finally:
            engine.dispose()


def require_schema(url: str) -> None:
    """Raise `DatabaseConfigError` when the database holds no presto tables yet."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            tables = set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
    if "api_key" not in tables:
        raise DatabaseConfigError(
            "the database has no presto tables; `presto db upgrade` creates them"
        )
