"""External ids: an integrator's own key of a restaurant (unique overall) and of an item
(unique per restaurant)

Both columns are nullable, so existing rows keep their data and have no external id. The
uniqueness is a unique index rather than a table constraint, so SQLite adds it without
copying the table. Published menu bodies are deleted: they were rendered without the new
field, and the next read renders them again (`presto db upgrade` publishes them at once).

Revision ID: 7e1a9c3b5d20
Revises: 0f67e7545fa7
Create Date: 2026-12-01 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "7e1a9c3b5d20"
down_revision: str | None = "0f67e7545fa7"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.add_column("restaurant", sa.Column("external_id", sa.String(length=255), nullable=True))
    op.create_index(op.f("ix_restaurant_external_id"), "restaurant", ["external_id"], unique=True)
    op.add_column("item", sa.Column("external_id", sa.String(length=255), nullable=True))
    op.create_index(
        op.f("ix_item_restaurant_external_id"),
        "item",
        ["restaurant_id", "external_id"],
        unique=True,
    )
    op.execute(sa.text("DELETE FROM published_menu"))


def downgrade() -> None:
    op.drop_index(op.f("ix_item_restaurant_external_id"), table_name="item")
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_column("external_id")
    op.drop_index(op.f("ix_restaurant_external_id"), table_name="restaurant")
    with op.batch_alter_table("restaurant", schema=None) as batch_op:
        batch_op.drop_column("external_id")
    op.execute(sa.text("DELETE FROM published_menu"))
