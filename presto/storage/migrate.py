"""Schema migrations: bring a database to the schema of this version of presto.

The migration scripts live inside the package (`presto/storage/migrations`) and the alembic
configuration is built here in code, so an installed presto migrates a database from any
working directory, with no alembic.ini. Each command runs in one transaction: on
PostgreSQL, and on SQLite too (SQLAlchemy emits BEGIN itself there), a failed migration
leaves the database as it was.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from presto.storage.models import Base

log = logging.getLogger("presto.migrate")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Migration files sort by creation date: 20260101_0a1b2c3d4e5f_add_item_version.py.
FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"
# What autogenerate and the schema check compare besides tables, columns and indexes.
COMPARE_OPTIONS = {"compare_type": True, "compare_server_default": True}


class MigrationError(Exception):
    """A database that presto cannot migrate without a decision from its operator."""


def alembic_config(connection: Connection | None = None) -> Config:
    """The alembic configuration of presto; `connection` is the one env.py migrates."""
    config = Config(attributes={"connection": connection})
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    # New scripts get the project's formatting and import order when ruff is installed
    # (a development install); without it they are written as rendered.
    if importlib.util.find_spec("ruff") is not None:
        config.set_section_option("post_write_hooks", "hooks", "ruff_format ruff_fix")
        for hook, options in [("ruff_format", "format"), ("ruff_fix", "check --fix --quiet")]:
            config.set_section_option("post_write_hooks", f"{hook}.type", "module")
            config.set_section_option("post_write_hooks", f"{hook}.module", "ruff")
            config.set_section_option(
                "post_write_hooks", f"{hook}.options", f"{options} REVISION_SCRIPT_FILENAME"
            )
    return config


def migration_engine(url: str) -> Engine:
    """An engine for migrating: one connection, transactional DDL on SQLite too.

    On SQLite foreign keys stay off: batch mode rebuilds a table by copying it and dropping
    the old one, and with foreign keys on that drop would cascade into the linked rows.
    """
    engine = sa.create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_manual_transactions)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    """Take BEGIN away from the sqlite3 module, which would not wrap DDL in it."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = OFF")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


@contextmanager
def migration_transaction(url: str) -> Iterator[Connection]:
    """A connection in a transaction that commits if the block succeeds."""
    engine = migration_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
            if connection.dialect.name == "sqlite":
                _check_sqlite_foreign_keys(connection)
    finally:
        engine.dispose()


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """Refuse to commit rows that a table rebuild left without their parent."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise MigrationError(f"migration left rows with broken foreign keys in {tables}")


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to `revision`.

    A database whose tables were created before presto had migrations is adopted when its
    schema is exactly this version's; otherwise :class:`MigrationError` says what to do.
    """
    with migration_transaction(url) as connection:
        config = alembic_config(connection)
        _adopt_unversioned(connection, config)
        command.upgrade(config, revision)


def downgrade(url: str, revision: str) -> None:
    """Undo migrations down to `revision` (`base`: drop every presto table)."""
    with migration_transaction(url) as connection:
        command.downgrade(alembic_config(connection), revision)


def stamp(url: str, revision: str) -> None:
    """Record `revision` as the database's schema without running any migration."""
    with migration_transaction(url) as connection:
        command.stamp(alembic_config(connection), revision)


def current(url: str) -> tuple[str, ...]:
    """The revisions the database is at; empty when it has no migration history."""
    engine = migration_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()


def heads() -> tuple[str, ...]:
    """The newest revisions among the migration scripts (one, unless branched)."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def known_revisions() -> set[str]:
    """Every revision among the migration scripts of this version of presto."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return {script.revision for script in scripts.walk_revisions()}


def make_revision(message: str) -> Path | None:
    """Write a migration script from the models' changes since the newest script.

    The base to compare with is an empty SQLite database upgraded to head, so no real
    database is needed. Returns the new file, or None when the models match head.
    """
    with tempfile.TemporaryDirectory(prefix="presto-revision-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'head.db'}"
        with migration_transaction(url) as connection:
            config = alembic_config(connection)
            command.upgrade(config, "head")
            script = command.revision(
                config,
                message=message,
                autogenerate=True,
                process_revision_directives=_skip_empty_revision,
            )
    if script is None or isinstance(script, list):
        return None
    return Path(script.path)


def _skip_empty_revision(
    _context: MigrationContext, _revision: object, directives: list[MigrationScript]
) -> None:
    """Write no script when autogenerate found nothing to change."""
    if all(ops.is_empty() for script in directives for ops in script.upgrade_ops_list):
        directives.clear()


def schema_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models."""
    context = MigrationContext.configure(connection, opts=COMPARE_OPTIONS)
    differences: list[Any] = compare_metadata(context, Base.metadata)
    return differences


def _adopt_unversioned(connection: Connection, config: Config) -> None:
    """Stamp head on a database created by `create_all` if its schema is head's."""
    if MigrationContext.configure(connection).get_current_heads():
        return
    tables = set(sa.inspect(connection).get_table_names()) & set(Base.metadata.tables)
    if not tables:
        return
    differences = schema_differences(connection)
    if differences:
        shown = "\n".join(f"  {difference}" for difference in differences[:10])
        raise MigrationError(
            "the database has presto tables but no migration history (an earlier presto "
            "created them) and their schema differs from this version's:\n"
            f"{shown}\n"
            "Either start over with `presto serve --reset-db` (this deletes its data), or "
            "make the schema match a migration revision by hand, record it with "
            "`presto db stamp --revision REVISION` and run `presto db upgrade`."
        )
    command.stamp(config, "head")
    log.info("database created without migrations matches head; stamped it")
