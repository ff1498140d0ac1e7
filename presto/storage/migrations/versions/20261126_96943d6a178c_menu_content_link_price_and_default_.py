"""Menu content: link price and default, time zone, schedules, images, tags, allergens,
calories

Every new column is nullable or has a server default, so existing rows keep their data and
get: no price override, not a default, time zone UTC, no schedule (always offered), no
image, no tags or allergens, calories not stated.

Revision ID: 96943d6a178c
Revises: bbe09de59af8
Create Date: 2026-11-26 22:14:16.666060
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

# As `presto.storage.models.JSON_LIST` at this revision.
JSON_LIST = sa.JSON().with_variant(JSONB(), "postgresql")

# Revision identifiers, used by Alembic.
revision: str = "96943d6a178c"
down_revision: str | None = "bbe09de59af8"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("schedule", JSON_LIST, server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(sa.Column("image_url", sa.String(length=2048), nullable=True))
        batch_op.add_column(
            sa.Column("tags", JSON_LIST, server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("allergens", JSON_LIST, server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(sa.Column("calories", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_item_calories_non_negative"), "calories IS NULL OR calories >= 0"
        )

    with op.batch_alter_table("item_modifier", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_item_modifier_price_in_range"),
            "price IS NULL OR (price >= 0 AND price <= 100000000)",
        )

    with op.batch_alter_table("restaurant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("restaurant", schema=None) as batch_op:
        batch_op.drop_column("timezone")

    with op.batch_alter_table("item_modifier", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_item_modifier_price_in_range"), type_="check")
        batch_op.drop_column("is_default")
        batch_op.drop_column("price")

    with op.batch_alter_table("item", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_item_calories_non_negative"), type_="check")
        batch_op.drop_column("calories")
        batch_op.drop_column("allergens")
        batch_op.drop_column("tags")
        batch_op.drop_column("image_url")
        batch_op.drop_column("schedule")
