"""Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a retried write gets the
first attempt's answer instead of being applied twice.

A key belongs to the API key that sent it. `claim` records the request before it runs
(its fingerprint, the time), so a retry arriving meanwhile, on any worker or host, is told
it is in flight (409); `mark_committed` runs in the write's own transaction, so the record
says the write happened exactly when it did; `store_outcome` then keeps the response for
replay. A request that fails before its write commits leaves nothing (`release`): it may
be retried as new. Records older than the retention are ignored and purged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from presto.errors import ConflictError, UnprocessableError
from presto.storage.models import IdempotencyRecord

# Seconds after which a record still in flight and not committed is taken to be abandoned
# (its worker died): far longer than any write may run.
IN_FLIGHT_LEASE = 60.0
# Seconds between two purges of expired records by one process.
PURGE_INTERVAL = 60.0

_purge_lock = threading.Lock()
_last_purge = 0.0


@dataclass(frozen=True)
class Outcome:
    """A stored response: status, the headers that matter, body."""

    status: int
    headers: dict[str, str]
    body: bytes


def claim(
    session: Session,
    api_key_id: int,
    key: str,
    fingerprint: str,
    now: datetime,
    retention: float,
) -> Outcome | None:
    """Record the request as in flight and return None (the caller processes it), or the
    stored outcome of the same request. Raises `ConflictError` while the first is in
    flight and `UnprocessableError` when the key was used for another request. Commits."""
    _purge_now_and_then(session, now, retention)
    record = _current(session, api_key_id, key, now, retention)
    if record is None:
        session.add(
            IdempotencyRecord(
                api_key_id=api_key_id, key=key, fingerprint=fingerprint, created_at=now
            )
        )
        try:
            session.commit()
        except IntegrityError:
            # Another worker claimed it first: decide on its record.
            session.rollback()
            return claim(session, api_key_id, key, fingerprint, now, retention)
        return None
    session.commit()
    if record.fingerprint != fingerprint:
        raise UnprocessableError(
            f"Idempotency-Key {key!r} was used for another request (method, path or body)."
        )
    if record.status is None or record.headers is None or record.body is None:
        raise ConflictError(
            f"A request with Idempotency-Key {key!r} is still being processed; retry later."
        )
    return Outcome(record.status, dict(record.headers), bytes(record.body))


def _current(
    session: Session, api_key_id: int, key: str, now: datetime, retention: float
) -> IdempotencyRecord | None:
    """The key's record, unless it has expired or was abandoned in flight (then deleted)."""
    record = session.scalars(
        sa.select(IdempotencyRecord)
        .where(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if record is None:
        return None
    expired = record.created_at <= now - timedelta(seconds=retention)
    abandoned = (
        not record.committed
        and record.status is None
        and record.created_at <= now - timedelta(seconds=IN_FLIGHT_LEASE)
    )
    if expired or abandoned:
        session.delete(record)
        session.flush()
        return None
    return record


def _where(api_key_id: int, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key)


def mark_committed(session: Session, api_key_id: int, key: str) -> None:
    """Say, in the transaction about to commit, that the keyed write happened."""
    session.execute(
        sa.update(IdempotencyRecord).where(_where(api_key_id, key)).values(committed=True)
    )


def store_outcome(session: Session, api_key_id: int, key: str, outcome: Outcome) -> None:
    """Keep the response of the keyed write for its retries. Commits."""
    session.execute(
        sa.update(IdempotencyRecord)
        .where(_where(api_key_id, key))
        .values(status=outcome.status, headers=outcome.headers, body=outcome.body)
    )
    session.commit()


def release(session: Session, api_key_id: int, key: str) -> None:
    """Forget the key of a request that failed before its write committed. Commits."""
    session.rollback()
    session.execute(
        sa.delete(IdempotencyRecord).where(
            _where(api_key_id, key), IdempotencyRecord.committed.is_(False)
        )
    )
    session.commit()


def purge_expired(session: Session, now: datetime, retention: float) -> int:
    """Delete every record older than the retention; how many. The caller commits."""
    cutoff = now - timedelta(seconds=retention)
    deleted = session.scalars(
        sa.delete(IdempotencyRecord)
        .where(IdempotencyRecord.created_at <= cutoff)
        .returning(IdempotencyRecord.key)
    ).all()
    return len(deleted)


def _purge_now_and_then(session: Session, now: datetime, retention: float) -> None:
    """Purge expired records if this process has not for `PURGE_INTERVAL` seconds."""
    global _last_purge
    with _purge_lock:
        if _last_purge and time.monotonic() - _last_purge < PURGE_INTERVAL:
            return
        _last_purge = time.monotonic()
    purge_expired(session, now, retention)
