"""The published-menu read function answers several reads in one call

`presto_read_published(integer, varchar)` becomes `presto_read_published(integer[],
varchar[])`: behind a transaction-mode pooler every statement is a transaction the pooler
hands a server connection and takes back, so the reads waiting for a connection go out in
one call (presto.storage.published_menus). PostgreSQL only; no table or data changes. An
instance still running the code before this revision finds no function of its own: its
reads behind a pooler go to Flask, which renders, until it is replaced.

Revision ID: 5c9e2d7f4a18
Revises: 3b8d5f1a2c64
Create Date: 2026-12-02 13:10:00.000000
"""

from __future__ import annotations

from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "5c9e2d7f4a18"
down_revision: str | None = "3b8d5f1a2c64"
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS presto_read_published(integer, varchar)")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION presto_read_published(
            wanted_restaurant_ids integer[], wanted_variants varchar[]
        )
        RETURNS TABLE (
            nth integer, current_version integer, menu_version integer, etag varchar,
            rendered_at bigint, valid_until bigint, body_gzip bytea, body_bytes integer
        )
        LANGUAGE plpgsql STABLE AS $$
        BEGIN
            FOR wanted IN 1 .. coalesce(cardinality(wanted_restaurant_ids), 0) LOOP
                RETURN QUERY
                SELECT wanted, r.menu_version, p.menu_version, p.etag, p.rendered_at,
                       p.valid_until, p.body_gzip, p.body_bytes
                FROM restaurant AS r
                LEFT OUTER JOIN published_menu AS p
                    ON p.restaurant_id = r.id AND p.variant = wanted_variants[wanted]
                WHERE r.id = wanted_restaurant_ids[wanted];
            END LOOP;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS presto_read_published(integer[], varchar[])")
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
