"""Ids never reused on SQLite: `item` gets `AUTOINCREMENT` back

Without `AUTOINCREMENT`, SQLite hands out the highest id in use plus one, so deleting the
newest item and creating another reissued its id (and its `ETag`). The first migration
created `restaurant`, `item` and `api_key` with it; the menu content migration rebuilt
`item` in batch mode, which does not carry the keyword over. This rebuilds `item` with it,
keeping every row: SQLite's sequence for the table starts at its highest id. `restaurant`
and `api_key` still have it, and PostgreSQL's identity sequences never go back, so nothing
else changes. Ids deleted above the highest one before this migration cannot be known.

Revision ID: 0f67e7545fa7
Revises: 5c1d2e3f4a5b
Create Date: 2026-12-01 17:20:00.000000
"""

from __future__ import annotations

from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "0f67e7545fa7"
down_revision: str | None = "5c1d2e3f4a5b"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    _rebuild_item(autoincrement=True)


def downgrade() -> None:
    _rebuild_item(autoincrement=False)


def _rebuild_item(*, autoincrement: bool) -> None:
    """Rebuild `item` on SQLite with or without `AUTOINCREMENT`, rows and constraints kept."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "item", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
