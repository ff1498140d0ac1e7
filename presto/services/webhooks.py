"""Webhook endpoints: registering, changing and removing them, rotating their signing
secrets, and what the deliveries to them did (replayed on request, or a test `ping`).

An endpoint belongs to one restaurant, or (`restaurant_id` None, registered with an admin
key) hears every restaurant. `scope` below is the restaurant a route names, or None on
the admin routes, which reach every endpoint.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from presto.errors import ConflictError, NotFoundError
from presto.services import outbox
from presto.services.restaurants import get_restaurant
from presto.services.webhook_urls import UnsafeUrlError, check_url
from presto.storage.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

SECRET_PREFIX = "whsec_"
# Random bytes of a signing secret (the specification asks for 24 to 64).
SECRET_BYTES = 32
# How long the secret before a rotation keeps signing beside the new one, so deliveries
# in flight and retries still verify with the secret the consumer had.
SECRET_OVERLAP = timedelta(hours=24)
# Deliveries `GET .../deliveries` lists, newest first.
DELIVERIES_LISTED = 100


def new_secret() -> str:
    """`whsec_` and the base64 of `SECRET_BYTES` random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the one before the
    last rotation during its overlap."""
    found = [endpoint.secret]
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and now < until:
        found.append(endpoint.previous_secret)
    return found


def _checked_url(url: str, allow_private: bool) -> str:
    try:
        check_url(url, allow_private=allow_private)
    except UnsafeUrlError as exc:
        raise ValidationError({"url": [str(exc)]}) from None
    return url


def create_endpoint(
    session: Session, restaurant_id: int | None, fields: dict[str, Any], *, allow_private: bool
) -> WebhookEndpoint:
    """Register an endpoint for the restaurant (None: every restaurant) with a new secret."""
    if restaurant_id is not None:
        get_restaurant(session, restaurant_id)
    endpoint = WebhookEndpoint(
        restaurant_id=restaurant_id,
        url=_checked_url(fields["url"], allow_private),
        events=list(dict.fromkeys(fields["events"])),
        description=fields.get("description", ""),
        secret=new_secret(),
        enabled=True,
        created_at=datetime.now(UTC),
    )
    session.add(endpoint)
    session.commit()
    return endpoint


def list_endpoints(session: Session, scope: int | None) -> list[WebhookEndpoint]:
    """The restaurant's endpoints (every endpoint for None), in id order."""
    query = sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if scope is not None:
        get_restaurant(session, scope)
        query = query.where(WebhookEndpoint.restaurant_id == scope)
    return list(session.scalars(query))


def get_endpoint(session: Session, scope: int | None, endpoint_id: int) -> WebhookEndpoint:
    """The endpoint, if `scope` reaches it; else `NotFoundError`."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or (scope is not None and endpoint.restaurant_id != scope):
        where = "" if scope is None else f" of restaurant {scope}"
        raise NotFoundError(f"There is no webhook endpoint {endpoint_id}{where}.")
    return endpoint


def cancel_pending(session: Session, endpoint_id: int) -> None:
    """Stop the endpoint's pending deliveries (it was disabled)."""
    session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == "pending")
        .values(state="cancelled", next_attempt_at=None)
    )


def update_endpoint(
    session: Session,
    scope: int | None,
    endpoint_id: int,
    changes: dict[str, Any],
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    """Change the URL, events, description or `enabled`; enabling clears the reason it was
    disabled, disabling cancels what was pending."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    if "url" in changes:
        endpoint.url = _checked_url(changes["url"], allow_private)
    if "events" in changes:
        endpoint.events = list(dict.fromkeys(changes["events"]))
    if "description" in changes:
        endpoint.description = changes["description"]
    enabled = changes.get("enabled", endpoint.enabled)
    if enabled and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason = True, None
    elif endpoint.enabled and not enabled:
        endpoint.enabled, endpoint.disabled_reason = False, "disabled by its owner"
        cancel_pending(session, endpoint.id)
    session.commit()
    return endpoint


def delete_endpoint(session: Session, scope: int | None, endpoint_id: int) -> None:
    """Remove the endpoint with its deliveries."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.commit()


def rotate_secret(session: Session, scope: int | None, endpoint_id: int) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing for `SECRET_OVERLAP`."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = datetime.now(UTC) + SECRET_OVERLAP
    endpoint.secret = new_secret()
    session.commit()
    return endpoint


@dataclass(frozen=True)
class DeliveryView:
    """A delivery as `GET .../deliveries` shows it."""

    delivery: WebhookDelivery
    event_type: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delivery, name)


def list_deliveries(session: Session, scope: int | None, endpoint_id: int) -> list[DeliveryView]:
    """The endpoint's latest deliveries, newest first, with their event's type."""
    get_endpoint(session, scope, endpoint_id)
    rows: Sequence[Any] = session.execute(
        sa.select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(DELIVERIES_LISTED)
    ).all()
    return [DeliveryView(delivery, event_type) for delivery, event_type in rows]


def _enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise ConflictError(
            f"Webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason}); "
            "enable it first (PATCH with enabled: true)."
        )


def replay(session: Session, scope: int | None, endpoint_id: int, event_id: str) -> DeliveryView:
    """Send the event to the endpoint again, as a new round of attempts (same `webhook-id`)."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    _enabled(endpoint)
    delivery = session.scalars(
        sa.select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.event_id == event_id
        )
    ).one_or_none()
    if delivery is None:
        raise NotFoundError(f"Webhook endpoint {endpoint_id} was never sent event {event_id}.")
    now = datetime.now(UTC)
    delivery.state, delivery.attempts, delivery.next_attempt_at = "pending", 0, now
    session.commit()
    event = session.get(WebhookEvent, event_id)
    assert event is not None  # a delivery's event goes only with it
    return DeliveryView(delivery, event.type)


def ping(session: Session, scope: int | None, endpoint_id: int) -> str:
    """Queue a `webhook.ping` event to the endpoint alone; its id."""
    endpoint = get_endpoint(session, scope, endpoint_id)
    _enabled(endpoint)
    data = {"endpoint_id": endpoint.id, "restaurant_id": endpoint.restaurant_id}
    event_id = outbox.record_event(
        session, outbox.PING, endpoint.restaurant_id, data, [endpoint.id]
    )
    session.commit()
    assert event_id is not None
    return event_id
