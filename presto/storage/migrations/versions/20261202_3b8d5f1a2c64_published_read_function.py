"""The published-menu read as a PostgreSQL function, for reads behind a transaction pooler

A function, `presto_read_published`, on PostgreSQL only; no table or data changes. Its
query's plan is kept on each server connection, which a statement sent through a
transaction-mode pooler cannot be (presto.storage.published_menus).

Revision ID: 3b8d5f1a2c64
Revises: 1eacc8b4ec55
Create Date: 2026-12-02 04:20:00.000000
"""

from __future__ import annotations

from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "3b8d5f1a2c64"
down_revision: str | None = "1eacc8b4ec55"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE OR REPLACE FUNCTION presto_read_published(
            wanted_restaurant_id integer, wanted_variant varchar
        )
        RETURNS TABLE (
            current_version integer, menu_version integer, etag varchar, rendered_at bigint,
            valid_until bigint, body_gzip bytea, body_bytes integer
        )
        LANGUAGE plpgsql STABLE AS $$
        BEGIN
            RETURN QUERY
            SELECT r.menu_version, p.menu_version, p.etag, p.rendered_at, p.valid_until,
                   p.body_gzip, p.body_bytes
            FROM restaurant AS r
            LEFT OUTER JOIN published_menu AS p
                ON p.restaurant_id = r.id AND p.variant = wanted_variant
            WHERE r.id = wanted_restaurant_id;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS presto_read_published(integer, varchar)")
