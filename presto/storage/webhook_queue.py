"""The outbox's delivery queue in SQL: claiming due deliveries, recording attempts,
disabling endpoints.

A claim is one `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`:
on PostgreSQL relays on several hosts claim disjoint rows without waiting on each other;
it moves each claimed row's `next_attempt_at` a lease ahead, so no relay claims it again
while its attempt runs, and one that dies mid-attempt only delays it by the lease. SQLite
has no row locks: the statement takes the database's one write lock, so claims of the
workers of its one host are serialized instead (the same outcome, in one place).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.storage.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

# How long a claim keeps other relays off a delivery: one attempt's timeout (15 s) and
# a margin. A relay that dies after its claim delays that delivery by this much.
LEASE = timedelta(seconds=20)


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for an attempt, with what the attempt needs."""

    delivery_id: int
    endpoint_id: int
    event_id: str
    attempts: int
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    body: str


def write_events(
    connection: sa.Connection, events: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    """Insert a transaction's outbox rows: `events` (id, type, restaurant_id, body,
    created_at) and their pending `deliveries` (endpoint_id, event_id, created_at).

    On PostgreSQL in one statement, one round trip: the events go in as a data-modifying
    CTE of the deliveries' insert, their columns passed as arrays, so the statement is
    the same text for any number of rows (prepared once, never rebuilt); the deliveries'
    foreign keys are checked as the statement ends, when the events are in. Elsewhere two
    statements, which cost no round trip on an embedded database.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(
            _WRITE_EVENTS,
            {
                "ids": [event["id"] for event in events],
                "types": [event["type"] for event in events],
                "restaurant_ids": [event["restaurant_id"] for event in events],
                "bodies": [event["body"] for event in events],
                "created": [event["created_at"] for event in events],
                "endpoint_ids": [delivery["endpoint_id"] for delivery in deliveries],
                "event_ids": [delivery["event_id"] for delivery in deliveries],
                "due": [delivery["created_at"] for delivery in deliveries],
            },
        )
        return
    connection.execute(_INSERT_EVENT, events)
    connection.execute(
        _INSERT_DELIVERY,
        [
            {
                **delivery,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": delivery["created_at"],
            }
            for delivery in deliveries
        ],
    )


# Built once, executed with each transaction's rows.
_INSERT_EVENT = sa.insert(WebhookEvent)
_INSERT_DELIVERY = sa.insert(WebhookDelivery)
_WRITE_EVENTS = sa.text(
    """
    WITH written AS (
        INSERT INTO webhook_event (id, type, restaurant_id, body, created_at)
        SELECT * FROM unnest(
            CAST(:ids AS varchar[]), CAST(:types AS varchar[]),
            CAST(:restaurant_ids AS integer[]), CAST(:bodies AS text[]),
            CAST(:created AS timestamptz[])
        )
    )
    INSERT INTO webhook_delivery
        (endpoint_id, event_id, state, attempts, next_attempt_at, created_at)
    SELECT endpoint_id, event_id, 'pending', 0, due, due
    FROM unnest(
        CAST(:endpoint_ids AS integer[]), CAST(:event_ids AS varchar[]),
        CAST(:due AS timestamptz[])
    ) AS rows (endpoint_id, event_id, due)
    """
)


def claim_due(
    session: Session, now: datetime, limit: int, busy: Iterable[int] = ()
) -> list[Claimed]:
    """Claim up to `limit` deliveries due by `now`, oldest first, skipping endpoints in
    `busy` (their attempts run here already) and rows another relay holds; commits."""
    due = {"now": now, "busy": list(busy)}
    # A plain read first: most rounds find nothing due, and on SQLite an `UPDATE` takes
    # the database's one write lock even when it matches no row.
    if not session.scalar(_ANY_DUE, due):
        session.rollback()
        return []
    ids = session.scalars(_CLAIM, {**due, "limit": limit, "lease_end": now + LEASE}).all()
    claimed = [Claimed(*row) for row in session.execute(_LOAD, {"ids": list(ids)})] if ids else []
    session.commit()
    return claimed


# The relay's statements, built once and executed with each round's values: building
# them (bind parameters, cache keys) costs more CPU than running them.
_DUE = sa.select(WebhookDelivery.id).where(
    WebhookDelivery.state == "pending",
    WebhookDelivery.next_attempt_at <= sa.bindparam("now"),
    WebhookDelivery.endpoint_id.not_in(sa.bindparam("busy", expanding=True)),
)
_ANY_DUE = sa.select(_DUE.exists())
_CLAIM = (
    sa.update(WebhookDelivery)
    .where(
        WebhookDelivery.id.in_(
            _DUE.order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(sa.bindparam("limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(next_attempt_at=sa.bindparam("lease_end"))
    .returning(WebhookDelivery.id)
    .execution_options(synchronize_session=False)
)
_LOAD = (
    sa.select(
        WebhookDelivery.id,
        WebhookDelivery.endpoint_id,
        WebhookDelivery.event_id,
        WebhookDelivery.attempts,
        WebhookEndpoint.url,
        WebhookEndpoint.secret,
        WebhookEndpoint.previous_secret,
        WebhookEndpoint.previous_secret_until,
        WebhookEvent.body,
    )
    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
    .where(WebhookDelivery.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(WebhookDelivery.id)
)


def release(session: Session, delivery_ids: list[int], now: datetime) -> None:
    """Give claimed deliveries back, due now (this relay will not attempt them soon)."""
    if delivery_ids:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.state == "pending")
            .values(next_attempt_at=now)
        )
    session.commit()


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: its status (None: no answer), error, time and length."""

    at: datetime
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class Outcome:
    """An attempt of a claimed delivery and what it made of the delivery: its new
    `state`, when it is due again, and its attempt count with this attempt."""

    delivery_id: int
    attempt: Attempt
    state: str
    next_attempt_at: datetime | None
    attempts: int


def record_attempts(
    session: Session, outcomes: list[Outcome], unsent: list[int], now: datetime
) -> None:
    """Store each attempt's outcome and give back the claimed deliveries not attempted
    (`unsent`, due at `now`), in one transaction; commits. A delivery replayed while its
    attempt ran is left to its new round. One statement for all the outcomes, executed
    with each one's values (building an `UPDATE` per outcome costs more than sending it)."""
    if outcomes:
        session.execute(
            _RECORD,
            [
                {
                    "delivery_id": outcome.delivery_id,
                    "earlier_attempts": outcome.attempts - 1,
                    "new_state": outcome.state,
                    "new_attempts": outcome.attempts,
                    "new_next_attempt_at": outcome.next_attempt_at,
                    "attempt_at": outcome.attempt.at,
                    "status": outcome.attempt.status,
                    "error": outcome.attempt.error,
                    "duration_ms": outcome.attempt.duration_ms,
                    "delivered_at": outcome.attempt.at if outcome.state == "delivered" else None,
                }
                for outcome in outcomes
            ],
        )
    release(session, unsent, now)


_deliveries = cast(sa.Table, WebhookDelivery.__table__)
_RECORD = (
    sa.update(_deliveries)
    .where(
        _deliveries.c.id == sa.bindparam("delivery_id"),
        _deliveries.c.state == "pending",
        _deliveries.c.attempts == sa.bindparam("earlier_attempts"),
    )
    .values(
        state=sa.bindparam("new_state"),
        attempts=sa.bindparam("new_attempts"),
        next_attempt_at=sa.bindparam("new_next_attempt_at"),
        last_attempt_at=sa.bindparam("attempt_at"),
        last_status=sa.bindparam("status"),
        last_error=sa.bindparam("error"),
        last_duration_ms=sa.bindparam("duration_ms"),
        delivered_at=sa.bindparam("delivered_at"),
    )
)


def disable_endpoint(session: Session, endpoint_id: int, reason: str) -> bool:
    """Disable the endpoint and cancel its pending deliveries; commits. False if it was
    disabled already (or is gone)."""
    changed = session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled)
        .values(enabled=False, disabled_reason=reason)
    ).rowcount  # type: ignore[attr-defined]
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == "pending")
        .values(state="cancelled", next_attempt_at=None)
    )
    session.commit()
    return bool(changed)


@dataclass(frozen=True)
class QueueState:
    """For `/metrics`: when the oldest pending delivery's event was made (None: nothing
    pending), the next time a delivery falls due, and how many endpoints are disabled."""

    oldest_pending: datetime | None
    next_due: datetime | None
    disabled_endpoints: int


def queue_state(session: Session) -> QueueState:
    """Read the queue's state (two aggregate statements); ends the transaction."""
    oldest, next_due = session.execute(_PENDING).one()
    disabled = session.scalar(_DISABLED)
    session.rollback()
    return QueueState(_aware(oldest), _aware(next_due), disabled or 0)


_PENDING = sa.select(
    sa.func.min(WebhookDelivery.created_at), sa.func.min(WebhookDelivery.next_attempt_at)
).where(WebhookDelivery.state == "pending")
_DISABLED = sa.select(sa.func.count()).select_from(WebhookEndpoint).where(~WebhookEndpoint.enabled)


def _aware(value: datetime | str | None) -> datetime | None:
    """An aggregate of a `UtcDateTime` column, made aware whatever the driver returned."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def purge(session: Session, before: datetime) -> int:
    """Delete deliveries that ended (delivered, failed, cancelled) before `before`, and
    events no delivery needs any more; commits. The number of events deleted."""
    session.execute(
        sa.delete(WebhookDelivery).where(
            WebhookDelivery.state != "pending",
            sa.func.coalesce(WebhookDelivery.last_attempt_at, WebhookDelivery.created_at) < before,
        )
    )
    owed = sa.select(WebhookDelivery.id).where(WebhookDelivery.event_id == WebhookEvent.id)
    deleted = session.execute(
        sa.delete(WebhookEvent).where(WebhookEvent.created_at < before, ~owed.exists())
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return int(deleted or 0)
