"""Published menus: each menu call's rendered body, kept gzip-compressed

The table starts empty; `presto db upgrade` then publishes every menu not yet published
(`presto.storage.published_menus.unpublished_restaurants`, rendered by
`presto.menus.publishing.publish_menus`), and until a menu is published its first read
renders and publishes it.

Revision ID: 5c1d2e3f4a5b
Revises: 96943d6a178c
Create Date: 2026-11-27 01:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "5c1d2e3f4a5b"
down_revision: str | None = "96943d6a178c"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "published_menu",
        sa.Column("restaurant_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("menu_version", sa.Integer(), nullable=False),
        sa.Column("etag", sa.String(length=128), nullable=False),
        sa.Column("rendered_at", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=True),
        sa.Column("body_gzip", sa.LargeBinary(), nullable=False),
        sa.Column("body_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["restaurant_id"],
            ["restaurant.id"],
            name=op.f("fk_published_menu_restaurant_id_restaurant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("restaurant_id", "variant", name=op.f("pk_published_menu")),
    )


def downgrade() -> None:
    op.drop_table("published_menu")
