"""Sold out until: the instant an item sold out ("86") is offered again

The column is nullable, so existing items keep their data and are not sold out. Published
menu bodies are deleted: they were rendered without the new fields, and the next read
renders them again.

Revision ID: a4f2c8e61b39
Revises: 7e1a9c3b5d20
Create Date: 2026-12-01 16:35:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "a4f2c8e61b39"
down_revision: str | None = "7e1a9c3b5d20"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.add_column("item", sa.Column("sold_out_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(sa.text("DELETE FROM published_menu"))


def downgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_column("sold_out_until")
    op.execute(sa.text("DELETE FROM published_menu"))
