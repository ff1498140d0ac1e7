"""Tables and ORM classes: restaurants, their items, and the item-to-modifier links.

A modifier is an item too (a side, a topping, a "Dressing" choice group). Items link to
their modifiers through `item_modifier`, a plain table beside the ORM classes: a
self-referential, ordered many-to-many. The link carries the restaurant id so that a
composite foreign key keeps both ends in the same restaurant and so that a whole
restaurant's links load with one indexed query.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAME_LENGTH = 200
CATEGORY_LENGTH = 100
DESCRIPTION_LENGTH = 2000
# Highest price in minor units (a million dollars in cents): a typo cannot overflow totals.
MAX_PRICE = 100_000_000
# Largest id a row can have: ids are 32-bit INTEGER columns on PostgreSQL.
MAX_ID = 2**31 - 1
# Length of the non-secret start of an API key kept to tell keys apart.
KEY_PREFIX_LENGTH = 16
# Longest IANA time zone name kept ("America/Argentina/ComodRivadavia" is 32).
TIMEZONE_LENGTH = 64
# Longest image URL kept (the practical limit of browsers and CDNs).
IMAGE_URL_LENGTH = 2048
# Longest external id kept: a POS's or aggregator's own key of a row (PLU, SKU, GUID).
EXTERNAL_ID_LENGTH = 255
# Longest `Idempotency-Key` kept (the draft leaves it open; a UUID is 36).
IDEMPOTENCY_KEY_LENGTH = 255
# A JSON list column: `jsonb` on PostgreSQL (comparable, compact), JSON text on SQLite.
JSON_LIST = sa.JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An instant, stored in UTC and read back time-zone aware on both backends (SQLite's
    `DATETIME` keeps no offset, so it holds the UTC wall time)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; constraint names are fixed so migrations can refer to them."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Restaurant(Base):
    """A restaurant; owns a menu of items priced in one currency."""

    __tablename__ = "restaurant"
    __table_args__ = (
        sa.CheckConstraint("length(currency) = 3", name="currency_iso_4217"),
        sa.CheckConstraint("menu_version >= 1", name="menu_version_positive"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        # Ids are never reused, so an ETag or a key scope never outlives its restaurant.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    # ISO 4217 code; every price of this restaurant is in its minor unit (cents for USD).
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")
    # Bumped by every change to the restaurant's menu; caches and ETags key on it.
    menu_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # IANA time zone of the restaurant; item schedules are in its local time.
    timezone: Mapped[str] = mapped_column(
        sa.String(TIMEZONE_LENGTH), default="UTC", server_default="UTC"
    )
    # Bumped by every change to the restaurant's own fields; its ETag.
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The restaurant's id in an integrator's system (a POS location id); unique overall.
    external_id: Mapped[str | None] = mapped_column(
        sa.String(EXTERNAL_ID_LENGTH), index=True, unique=True
    )

    items: Mapped[list[Item]] = relationship(
        back_populates="restaurant", cascade="all, delete-orphan", passive_deletes=True
    )


item_modifier = sa.Table(
    "item_modifier",
    Base.metadata,
    sa.Column("restaurant_id", sa.Integer, nullable=False, index=True),
    sa.Column("item_id", sa.Integer, primary_key=True),
    sa.Column("modifier_id", sa.Integer, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, default=0),
    # The modifier's price in this parent (minor units); null: the modifier's own price.
    sa.Column("price", sa.Integer, nullable=True),
    # A pre-selected choice of the parent's group.
    sa.Column("is_default", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Both ends must be items of the link's restaurant: a modifier never crosses menus.
    sa.ForeignKeyConstraint(
        ["restaurant_id", "item_id"],
        ["item.restaurant_id", "item.id"],
        ondelete="CASCADE",
        name="fk_item_modifier_item",
    ),
    sa.ForeignKeyConstraint(
        ["restaurant_id", "modifier_id"],
        ["item.restaurant_id", "item.id"],
        ondelete="CASCADE",
        name="fk_item_modifier_modifier",
    ),
    sa.CheckConstraint("item_id <> modifier_id", name="no_self_link"),
    sa.CheckConstraint(
        f"price IS NULL OR (price >= 0 AND price <= {MAX_PRICE})", name="price_in_range"
    ),
    sa.Index("ix_item_modifier_modifier_id", "modifier_id"),
)


# The fields of an item that its writer sets (besides its modifiers and menu position):
# what a menu document carries (the demo's too).
ITEM_FIELDS = (
    "name",
    "description",
    "category",
    "price",
    "available",
    "standalone",
    "min_choices",
    "max_choices",
    "schedule",
    "image_url",
    "tags",
    "allergens",
    "calories",
    "external_id",
    "sold_out_until",
)


class Item(Base):
    """A menu item, or a modifier of other items, or both.

    `min_choices`/`max_choices` rule how many of this item's own modifiers a guest
    picks: a "Dressing" item with min 1, max 1 is a pick-exactly-one group. `standalone`
    tells a menu entry (a burger) from a modifier-only item (ketchup).
    """

    __tablename__ = "item"
    __table_args__ = (
        sa.UniqueConstraint("restaurant_id", "id", name="uq_item_restaurant_id_id"),
        sa.CheckConstraint("price >= 0", name="price_non_negative"),
        sa.CheckConstraint(f"price <= {MAX_PRICE}", name="price_at_most_max"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("min_choices >= 0", name="min_choices_non_negative"),
        sa.CheckConstraint("calories IS NULL OR calories >= 0", name="calories_non_negative"),
        sa.CheckConstraint(
            "max_choices IS NULL OR max_choices >= min_choices", name="max_choices_not_below_min"
        ),
        # The hot query: a restaurant's items in menu order.
        sa.Index("ix_item_restaurant_position", "restaurant_id", "position", "id"),
        # An integrator's key of an item (PLU, SKU) names one item of its restaurant.
        sa.Index("ix_item_restaurant_external_id", "restaurant_id", "external_id", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    restaurant_id: Mapped[int] = mapped_column(sa.ForeignKey("restaurant.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(sa.String(DESCRIPTION_LENGTH), default="")
    category: Mapped[str | None] = mapped_column(sa.String(CATEGORY_LENGTH))
    # Integer minor units of the restaurant's currency; never a float.
    price: Mapped[int] = mapped_column(default=0)
    available: Mapped[bool] = mapped_column(default=True)
    standalone: Mapped[bool] = mapped_column(default=True)
    min_choices: Mapped[int] = mapped_column(default=0)
    # None: no upper limit.
    max_choices: Mapped[int | None] = mapped_column()
    # Windows `{"days": ["mon", ...], "start": "07:00", "end": "11:00"}` in the
    # restaurant's local time when the item is offered; empty: always.
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON_LIST, default=list, server_default=sa.text("'[]'")
    )
    # Absolute https URL of a picture of the item.
    image_url: Mapped[str | None] = mapped_column(sa.String(IMAGE_URL_LENGTH))
    # Dietary tags and EU allergens, from the vocabularies of presto.services.dietary.
    tags: Mapped[list[str]] = mapped_column(JSON_LIST, default=list, server_default=sa.text("'[]'"))
    allergens: Mapped[list[str]] = mapped_column(
        JSON_LIST, default=list, server_default=sa.text("'[]'")
    )
    # Energy in kcal; null: not stated.
    calories: Mapped[int | None] = mapped_column()
    # The item's id in an integrator's system (a POS PLU or SKU); unique per restaurant.
    external_id: Mapped[str | None] = mapped_column(sa.String(EXTERNAL_ID_LENGTH))
    # Sold out ("86") until this instant: shown unavailable before it, available again from
    # it on with no write. Null: not sold out.
    sold_out_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Order of the item in its restaurant's menu (ties broken by id).
    position: Mapped[int] = mapped_column(default=0)
    # Bumped by every change to the item's fields or to its list of modifiers.
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    restaurant: Mapped[Restaurant] = relationship(back_populates="items")
    # Ordered modifiers. The menu call fills this from one query over `item_modifier`
    # (see presto.services.menus.attach_modifiers) rather than lazily per item.
    modifiers: Mapped[list[Item]] = relationship(
        secondary=item_modifier,
        primaryjoin=lambda: Item.id == item_modifier.c.item_id,
        secondaryjoin=lambda: Item.id == item_modifier.c.modifier_id,
        order_by=lambda: (item_modifier.c.position, item_modifier.c.modifier_id),
        viewonly=True,
        lazy="raise_on_sql",
    )

    def __repr__(self) -> str:
        return f"Item(id={self.id!r}, name={self.name!r})"


class ApiKey(Base):
    """A bearer key for writes, scoped to one restaurant or, for an admin, to all.

    Only the SHA-256 of the key is stored: the key is 256 random bits, so a fast hash is
    enough and a stolen database yields no usable key. `prefix` is the key's harmless
    start, shown by `presto keys list` to tell keys apart.
    """

    __tablename__ = "api_key"
    __table_args__ = (
        sa.CheckConstraint(
            "(admin AND restaurant_id IS NULL) OR (NOT admin AND restaurant_id IS NOT NULL)",
            name="admin_or_one_restaurant",
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(KEY_PREFIX_LENGTH))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    # The key's restaurant; its keys go with it when it is deleted.
    restaurant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("restaurant.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class IdempotencyRecord(Base):
    """A write made with an `Idempotency-Key`: what it was (a fingerprint of method, path
    and body) and, once answered, its outcome, so a retry gets that answer again.

    The row is inserted before the write runs (the key is then in flight), marked
    `committed` in the write's own transaction, and given the response right after; rows
    older than the retention are purged (presto.services.idempotency).
    """

    __tablename__ = "idempotency_record"

    api_key_id: Mapped[int] = mapped_column(
        sa.ForeignKey("api_key.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(sa.String(IDEMPOTENCY_KEY_LENGTH), primary_key=True)
    # SHA-256 (hex) of the method, path with query and body of the first request.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    # Set in the write's transaction: the write happened.
    committed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The response, once stored: status, the headers that matter (JSON object), body.
    status: Mapped[int | None] = mapped_column()
    headers: Mapped[dict[str, str] | None] = mapped_column(sa.JSON())
    body: Mapped[bytes | None] = mapped_column(sa.LargeBinary())


class PublishedMenu(Base):
    """A menu call's response body, rendered when the menu changed and kept gzip-compressed,
    so that a worker that has not cached the menu answers with one indexed read.

    A row answers only while `menu_version` is the restaurant's current one and, for a menu
    with schedules, until `valid_until` (Unix seconds); otherwise the menu is rendered
    again (`presto.services.published`).
    """

    __tablename__ = "published_menu"

    restaurant_id: Mapped[int] = mapped_column(
        sa.ForeignKey("restaurant.id", ondelete="CASCADE"), primary_key=True
    )
    # Which menu call: "" (entries, nested), "all", "normalized", "normalized,all".
    variant: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    menu_version: Mapped[int]
    # The menu call's entity tag for these bytes (identity encoding).
    etag: Mapped[str] = mapped_column(sa.String(128))
    # Unix time (whole seconds, rounded down) it was rendered at: a menu with schedules
    # shows the period around that moment.
    rendered_at: Mapped[int] = mapped_column(sa.BigInteger)
    valid_until: Mapped[int | None] = mapped_column(sa.BigInteger)
    body_gzip: Mapped[bytes] = mapped_column(sa.LargeBinary)
    # Length of the uncompressed body.
    body_bytes: Mapped[int]


# Longest webhook endpoint URL kept, as for image URLs.
WEBHOOK_URL_LENGTH = 2048
# Longest webhook signing secret kept: `whsec_` and base64 of at most 64 bytes.
WEBHOOK_SECRET_LENGTH = 100


class WebhookEndpoint(Base):
    """A consumer's URL that change events are POSTed to, signed with its secret
    (presto.services.webhooks). `restaurant_id` None: an admin's endpoint hearing every
    restaurant. Not a foreign key: an endpoint outlives its restaurant long enough to hear
    `restaurant.deleted` (ids are never reused, so it never hears another restaurant)."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    restaurant_id: Mapped[int | None] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(sa.String(WEBHOOK_URL_LENGTH))
    description: Mapped[str] = mapped_column(sa.String(DESCRIPTION_LENGTH), default="")
    # Event types it hears, e.g. ["menu.updated"].
    events: Mapped[list[str]] = mapped_column(JSON_LIST)
    secret: Mapped[str] = mapped_column(sa.String(WEBHOOK_SECRET_LENGTH))
    # The secret before the last rotation, still signing until `previous_secret_until`.
    previous_secret: Mapped[str | None] = mapped_column(sa.String(WEBHOOK_SECRET_LENGTH))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    enabled: Mapped[bool] = mapped_column(default=True)
    # Why deliveries stopped: a 410, or failing past the last retry; null while enabled.
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(DESCRIPTION_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class WebhookEvent(Base):
    """An event of the outbox: written in the transaction of the change it tells of, with
    the exact body every delivery of it sends (so retries and replays are byte-identical)."""

    __tablename__ = "webhook_event"

    # `msg_` and a time-ordered hex id: the `webhook-id` of every delivery.
    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(64))
    restaurant_id: Mapped[int | None] = mapped_column()
    body: Mapped[str] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class WebhookDelivery(Base):
    """One event owed to one endpoint, and how its attempts went.

    `state` is `pending` (due at `next_attempt_at`), `delivered`, `failed` (past the last
    retry, or answered 410) or `cancelled` (its endpoint was disabled first). A relay that
    claims a delivery moves `next_attempt_at` a lease ahead, so no other relay sends it
    while the attempt runs, and a relay that dies mid-attempt only delays it.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery_endpoint_event"),
        # The relay's claim: due deliveries, oldest first.
        sa.Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(
        sa.ForeignKey("webhook_event.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The last attempt's HTTP status (null: no answer) and error, and how long it took.
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(DESCRIPTION_LENGTH))
    last_duration_ms: Mapped[int | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
