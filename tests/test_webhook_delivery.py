"""What an attempt sends and what its answer means; the resolver's guard at connect time;
the claim's row locks on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from presto.services import outbox, webhooks
from presto.services.webhook_delivery import (
    MAX_ATTEMPTS,
    SCHEDULE,
    retry_after_seconds,
    signed_headers,
    verdict,
)
from presto.services.webhook_urls import UnsafeUrlError, check_url
from presto.serving.webhook_relay import PublicResolver
from presto.storage import webhook_queue
from presto.storage.engine import make_sessionmaker
from presto.storage.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def add_endpoint(session: Session) -> WebhookEndpoint:
    """An admin's enabled endpoint hearing `menu.updated`, added to the session."""
    endpoint = WebhookEndpoint(
        restaurant_id=None, url="https://1.1.1.1/", events=["menu.updated"],
        secret=webhooks.new_secret(), enabled=True, created_at=NOW,
    )  # fmt: skip
    session.add(endpoint)
    return endpoint


def test_every_signature_verifies_with_the_reference_library() -> None:
    old, new = webhooks.new_secret(), webhooks.new_secret()
    body = '{"type":"menu.updated","timestamp":"2026-12-01T12:00:00Z","data":{}}'
    timestamp = int(datetime.now(UTC).timestamp())
    headers = signed_headers([new, old], "msg_1", timestamp, body)

    assert Webhook(new).verify(body, headers) == {
        "type": "menu.updated", "timestamp": "2026-12-01T12:00:00Z", "data": {},
    }  # fmt: skip
    assert Webhook(old).verify(body, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(body.replace("menu", "item"), headers)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(timestamp)


def test_the_schedule_then_giving_up() -> None:
    waits = []
    for attempts in range(1, MAX_ATTEMPTS):
        decided = verdict(500, attempts, NOW)
        assert decided.state == "pending" and decided.disable_reason is None
        assert decided.next_attempt_at is not None
        waits.append((decided.next_attempt_at - NOW).total_seconds())
    for wait, step in zip(waits, SCHEDULE, strict=True):
        assert step <= wait <= step * 1.1
    assert SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    last = verdict(None, MAX_ATTEMPTS, NOW)
    assert (last.state, last.next_attempt_at) == ("failed", None)
    assert last.disable_reason is not None and "every attempt failed (8" in last.disable_reason


def test_answers_and_their_verdicts() -> None:
    assert verdict(204, 1, NOW).state == "delivered"
    gone = verdict(410, 1, NOW)
    assert (gone.state, gone.disable_reason) == ("failed", "the endpoint answered 410 Gone")
    assert verdict(302, 1, NOW).state == "pending"  # redirects are not followed
    slow = verdict(503, 1, NOW, retry_after=120)
    assert slow.next_attempt_at == NOW + timedelta(seconds=120)
    ignored = verdict(500, 1, NOW, retry_after=120)  # only 429 and 503 ask to wait
    assert ignored.next_attempt_at is not None
    assert ignored.next_attempt_at < NOW + timedelta(seconds=6)
    scaled = verdict(500, 3, NOW, scale=0.001)
    assert scaled.next_attempt_at is not None
    assert 1.8 <= (scaled.next_attempt_at - NOW).total_seconds() <= 1.98
    assert retry_after_seconds(" 30 ") == 30
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT") is None
    assert retry_after_seconds("99999999") == 36000


def test_the_resolver_refuses_a_name_of_a_private_address() -> None:
    async def resolve(host: str) -> list[str]:
        resolver = PublicResolver()
        try:
            return [result["host"] for result in await resolver.resolve(host, 443)]
        finally:
            await resolver.close()

    with pytest.raises(UnsafeUrlError, match="not a public address"):
        asyncio.run(resolve("localhost"))
    assert asyncio.run(resolve("1.1.1.1")) == ["1.1.1.1"]


def test_url_rules() -> None:
    check_url("https://1.1.1.1:8443/hook?x=1", allow_private=False)
    check_url("http://127.0.0.1:9/hook", allow_private=True)
    for url in ["https://1.1.1.1:99999/", "https://100.64.0.1/", "https://224.0.0.1/"]:
        with pytest.raises(UnsafeUrlError):
            check_url(url, allow_private=False)


def test_claims_skip_rows_another_relay_holds(engine: Engine, session: Session) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: its one writer serializes claims")
    endpoint = add_endpoint(session)
    session.flush()
    for n in range(3):
        outbox.record_event(session, "menu.updated", n, {"n": n}, [endpoint.id])
    session.commit()
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    with factory() as holder, factory() as claimer:
        held = holder.scalars(
            sa.select(WebhookDelivery.id).order_by(WebhookDelivery.id).limit(1).with_for_update()
        ).one()
        claimed = webhook_queue.claim_due(claimer, now, 10)
        assert [c.delivery_id for c in claimed] == [held + 1, held + 2]
        assert webhook_queue.claim_due(claimer, now, 10) == []  # leased
        holder.rollback()
    [last] = webhook_queue.claim_due(session, now, 10)
    assert last.delivery_id == held
    later = webhook_queue.claim_due(session, now + webhook_queue.LEASE, 10)
    assert sorted(c.delivery_id for c in later) == [held, held + 1, held + 2]


def test_finished_deliveries_are_purged_after_the_retention(session: Session) -> None:
    endpoint = add_endpoint(session)
    session.flush()
    ids = [outbox.record_event(session, "menu.updated", 1, {}, [endpoint.id]) for _ in range(3)]
    session.commit()
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_(ids[:2]))
        .values(state="delivered", last_attempt_at=NOW - timedelta(days=8))
    )
    session.execute(sa.update(WebhookEvent).values(created_at=NOW - timedelta(days=8)))
    session.commit()

    assert webhook_queue.purge(session, NOW - timedelta(days=7)) == 2

    left = session.scalars(sa.select(WebhookDelivery.event_id)).all()
    assert left == [ids[2]]  # pending: kept however old
    assert session.scalars(sa.select(WebhookEvent.id)).all() == [ids[2]]


def test_a_batch_records_its_outcomes_and_gives_back_what_it_did_not_send(
    session: Session,
) -> None:
    endpoint = add_endpoint(session)
    session.flush()
    for n in range(3):
        outbox.record_event(session, "menu.updated", 1, {"n": n}, [endpoint.id])
    session.commit()
    now = datetime.now(UTC)
    first, second, third = webhook_queue.claim_due(session, now, 16)
    assert webhook_queue.claim_due(session, now, 16) == []  # leased
    assert webhook_queue.claim_due(session, now + webhook_queue.LEASE, 16, {endpoint.id}) == []
    retry_at = now + timedelta(seconds=5)
    outcomes = [
        webhook_queue.Outcome(
            first.delivery_id, webhook_queue.Attempt(now, 204, None, 3), "delivered", None, 1
        ),
        webhook_queue.Outcome(
            second.delivery_id, webhook_queue.Attempt(now, 500, None, 4), "pending", retry_at, 1
        ),
    ]

    webhook_queue.record_attempts(session, outcomes, [third.delivery_id], now)

    rows = session.execute(
        sa.select(
            WebhookDelivery.state,
            WebhookDelivery.attempts,
            WebhookDelivery.last_status,
            WebhookDelivery.next_attempt_at,
        ).order_by(WebhookDelivery.id)
    ).all()
    assert [tuple(row[:3]) for row in rows] == [
        ("delivered", 1, 204), ("pending", 1, 500), ("pending", 0, None),
    ]  # fmt: skip
    assert rows[0][3] is None
    assert rows[1][3] == retry_at and rows[2][3] == now
    # The one not sent is due again at once, before the failed one's retry.
    [again] = webhook_queue.claim_due(session, now, 16)
    assert again.delivery_id == third.delivery_id


def test_events_are_written_as_their_transaction_commits_and_never_after_a_rollback(
    session: Session,
) -> None:
    endpoint = add_endpoint(session)
    session.commit()
    endpoint_id = endpoint.id

    def stored() -> list[tuple[str, int]]:
        rows = session.execute(
            sa.select(WebhookEvent.id, WebhookDelivery.endpoint_id)
            .join(WebhookDelivery, WebhookDelivery.event_id == WebhookEvent.id)
            .order_by(WebhookEvent.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    lost = outbox.record_event(session, "menu.updated", 1, {"n": 0}, [endpoint_id])
    assert lost is not None and stored() == []  # written as the transaction commits
    session.rollback()
    first = outbox.record_event(session, "menu.updated", 1, {"n": 1}, [endpoint_id])
    second = outbox.record_event(session, "menu.updated", 1, {"n": 2}, [endpoint_id])
    session.commit()

    assert stored() == [(first, endpoint_id), (second, endpoint_id)]
    session.commit()  # a later commit writes nothing again
    assert len(stored()) == 2
