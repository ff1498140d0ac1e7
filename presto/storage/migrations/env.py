"""Alembic's environment: runs the migration scripts on the connection presto hands over.

presto builds the alembic Config in code (see presto.storage.migrate) and passes an open
connection in `config.attributes["connection"]`, so no alembic.ini and no URL is read
here. Autogenerate compares against the models' MetaData, whose naming convention gives
every constraint a stable name that later migrations can refer to.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from presto.storage.models import Base


def run_migrations(connection: Connection) -> None:
    """Run the pending scripts (or autogenerate) inside the caller's transaction."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        # presto.storage.migrate runs every command in one transaction, on SQLite too.
        transactional_ddl=True,
        # As presto.storage.migrate.COMPARE_OPTIONS, which checks databases against the models.
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("presto runs migrations on a live database only (no --sql mode)")
run_migrations(context.config.attributes["connection"])
