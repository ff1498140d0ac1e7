"""The transactional outbox of change events: each event is written in the transaction of
the change it tells of, so no event goes out without its change and no change commits
without its event. The relay (presto.serving.webhook_relay) delivers them after the commit.

An event is recorded only for the endpoints that hear it when the change commits: one
indexed read of the enabled endpoints, and with subscribers one event row and one
delivery row per endpoint, written as the transaction commits (one statement for all of
its events on PostgreSQL). Payloads are thin (ids and versions), shaped as the Standard
Webhooks specification recommends: `{"type", "timestamp", "data"}`. Every payload carries
the restaurant's `menu_version`, which only grows, so a consumer can drop an event that
arrives after a newer one.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto import __version__
from presto.storage import webhook_queue
from presto.storage.models import Item, Restaurant, WebhookEndpoint

MENU_UPDATED = "menu.updated"
ITEM_SOLD_OUT = "item.sold_out"
ITEM_BACK_IN_STOCK = "item.back_in_stock"
RESTAURANT_DELETED = "restaurant.deleted"
# The event a `ping` sends; an endpoint cannot subscribe to it, it is always delivered.
PING = "webhook.ping"
# Key in `Session.info`: the transaction and what the outbox read in it (the endpoints by
# restaurant, the restaurants' external ids) and the events it recorded, written as it
# commits.
ENDPOINTS = "presto.webhook_endpoints"
# Key in that cache: the rows of the events recorded, not yet written.
PENDING = "pending events"
# What an endpoint may subscribe to.
EVENT_TYPES = (MENU_UPDATED, ITEM_SOLD_OUT, ITEM_BACK_IN_STOCK, RESTAURANT_DELETED)


def new_event_id() -> str:
    """`msg_` and 28 hex digits: nanoseconds then random bits, so ids sort by time and
    never repeat across hosts."""
    return f"msg_{time.time_ns():016x}{secrets.token_hex(6)}"


def rfc3339(moment: datetime) -> str:
    """An instant as RFC 3339 in UTC with a `Z`, as payloads carry them."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _transaction_cache(session: Session) -> dict[Any, Any]:
    """What the outbox read in the session's current transaction (a write that records
    two events reads the endpoints and the restaurant's external id once)."""
    current = session.get_transaction()
    if current is None:
        session.connection()  # begins the transaction what is recorded belongs to
        current = session.get_transaction()
    transaction, known = session.info.get(ENDPOINTS, (None, {}))
    if transaction is not current:
        known = {}
        session.info[ENDPOINTS] = (current, known)
    return known


def subscribers(session: Session, restaurant_id: int, event_type: str) -> list[int]:
    """Ids of the enabled endpoints that hear `event_type` of this restaurant."""
    known = _transaction_cache(session)
    if restaurant_id not in known:
        known[restaurant_id] = [
            (endpoint_id, events)
            for endpoint_id, events in session.execute(
                sa.select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                    WebhookEndpoint.enabled,
                    sa.or_(
                        WebhookEndpoint.restaurant_id == restaurant_id,
                        WebhookEndpoint.restaurant_id.is_(None),
                    ),
                )
            )
        ]
    return [endpoint_id for endpoint_id, events in known[restaurant_id] if event_type in events]


def record_event(
    session: Session,
    event_type: str,
    restaurant_id: int | None,
    data: dict[str, Any],
    endpoint_ids: Sequence[int],
) -> str | None:
    """Record the event and a pending delivery to each endpoint in the caller's
    transaction (the rows are written as it commits); None, and nothing recorded, when
    there is no endpoint."""
    if not endpoint_ids:
        return None
    now = datetime.now(UTC)
    event_id = new_event_id()
    body = orjson.dumps({"type": event_type, "timestamp": rfc3339(now), "data": data}).decode()
    known = _transaction_cache(session)
    if PENDING not in known:
        known[PENDING] = ([], [])
        sa.event.listen(session, "before_commit", _write_pending, once=True)
    events, deliveries = known[PENDING]
    events.append(
        {"id": event_id, "type": event_type, "restaurant_id": restaurant_id, "body": body,
         "created_at": now}
    )  # fmt: skip
    deliveries.extend(
        {"endpoint_id": endpoint_id, "event_id": event_id, "created_at": now}
        for endpoint_id in endpoint_ids
    )
    return event_id


def _write_pending(session: Session) -> None:
    """Write the transaction's events and deliveries as it commits, all of them at once
    (a sold-out mark records two events); an earlier transaction's hook left by a
    rollback finds nothing left to write."""
    events, deliveries = _transaction_cache(session).pop(PENDING, ([], []))
    if events:
        webhook_queue.write_events(session.connection(), events, deliveries)


def remember_external_id(session: Session, restaurant_id: int, external_id: str | None) -> None:
    """Keep the restaurant's external id for the events of the current transaction (the
    write that bumps the menu version reads it in the same statement)."""
    _transaction_cache(session)[("external_id", restaurant_id)] = external_id


def _restaurant_external_id(session: Session, restaurant_id: int) -> str | None:
    """The restaurant's external id: as `remember_external_id` kept it, else read once
    per transaction."""
    known = _transaction_cache(session)
    cache_key = ("external_id", restaurant_id)
    if cache_key not in known:
        known[cache_key] = session.scalar(
            sa.select(Restaurant.external_id).where(Restaurant.id == restaurant_id)
        )
    external_id: str | None = known[cache_key]
    return external_id


def menu_updated(session: Session, restaurant_id: int, menu_version: int) -> None:
    """Record `menu.updated` for a change that made the menu `menu_version`."""
    endpoints = subscribers(session, restaurant_id, MENU_UPDATED)
    if not endpoints:
        return
    data = {
        "restaurant_id": restaurant_id,
        "restaurant_external_id": _restaurant_external_id(session, restaurant_id),
        "menu_version": menu_version,
        # The menu call's `ETag` at this version (a menu with schedules adds its period).
        "etag": f'"m{menu_version}-{__version__}"',
        "changed_at": rfc3339(datetime.now(UTC)),
    }
    record_event(session, MENU_UPDATED, restaurant_id, data, endpoints)


def stock_changed(session: Session, item: Item, menu_version: int) -> None:
    """Record `item.sold_out` or `item.back_in_stock` for the item's new `sold_out_until`."""
    until = item.sold_out_until
    sold_out = until is not None and until > datetime.now(UTC)
    event_type = ITEM_SOLD_OUT if sold_out else ITEM_BACK_IN_STOCK
    endpoints = subscribers(session, item.restaurant_id, event_type)
    if not endpoints:
        return
    data = {
        "restaurant_id": item.restaurant_id,
        "restaurant_external_id": _restaurant_external_id(session, item.restaurant_id),
        "item_id": item.id,
        "external_id": item.external_id,
        "sold_out_until": None if until is None else rfc3339(until),
        "menu_version": menu_version,
    }
    record_event(session, event_type, item.restaurant_id, data, endpoints)


def restaurant_deleted(session: Session, restaurant: Restaurant, menu_version: int) -> None:
    """Record `restaurant.deleted`, before the restaurant's row goes."""
    endpoints = subscribers(session, restaurant.id, RESTAURANT_DELETED)
    data = {
        "restaurant_id": restaurant.id,
        "restaurant_external_id": restaurant.external_id,
        "menu_version": menu_version,
        "deleted_at": rfc3339(datetime.now(UTC)),
    }
    record_event(session, RESTAURANT_DELETED, restaurant.id, data, endpoints)
