"""Webhook endpoints: `/restaurant/<id>/webhooks[...]` (the restaurant's key or an admin
key) and `/webhooks[...]` (admin key: endpoints that hear every restaurant, and every
endpoint). Each view serves both paths; `restaurant_id` is None on the admin ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app

from presto.api import auth
from presto.api.blueprint import BEARER_SCHEME, ApiBlueprint
from presto.api.session import db_session
from presto.schemas.webhooks import (
    WebhookDeliverySchema,
    WebhookEndpointCreateSchema,
    WebhookEndpointPatchSchema,
    WebhookEndpointSchema,
    WebhookEndpointSecretSchema,
    WebhookPingSchema,
)
from presto.services import webhooks
from presto.storage.models import WebhookEndpoint

# `app.config` key: whether endpoint URLs may be http and private (--webhook-allow-private).
ALLOW_PRIVATE = "PRESTO_WEBHOOK_ALLOW_PRIVATE"

bp = ApiBlueprint(
    "webhooks",
    __name__,
    description="Endpoints that hear signed change events (Standard Webhooks), and their "
    "deliveries.",
)

View = TypeVar("View", bound=Callable[..., Any])

_LIST = ("/restaurant/<int:restaurant_id>/webhooks", "/webhooks")
_ONE = tuple(f"{path}/<int:endpoint_id>" for path in _LIST)


def _both(paths: tuple[str, ...], method: str) -> Callable[[View], View]:
    """Route a view at the restaurant's path and at the admin's."""

    def decorator(view: View) -> View:
        for path in paths:
            view = bp.route(path, methods=[method])(view)
        return view

    return decorator


def _read() -> Callable[[View], View]:
    """Guard a read like a write (an endpoint's URL and deliveries are its owner's)."""

    def decorator(view: View) -> View:
        view = bp.documents_problems(401, 403, 404)(view)
        view = bp.doc(security=[{BEARER_SCHEME: []}])(view)
        return auth.key_required()(view)

    return decorator


def _allow_private() -> bool:
    return bool(current_app.config.get(ALLOW_PRIVATE, False))


@_both(_LIST, "POST")
@bp.guarded_write()
@bp.body(WebhookEndpointCreateSchema)
@bp.response(201, WebhookEndpointSecretSchema)
@bp.documents_problems(404)
def create_endpoint(fields: dict[str, Any], restaurant_id: int | None = None) -> Any:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    session = db_session()
    endpoint = webhooks.create_endpoint(
        session, restaurant_id, fields, allow_private=_allow_private()
    )
    return endpoint, 201


@_both(_LIST, "GET")
@_read()
@bp.response(200, WebhookEndpointSchema(many=True))
def list_endpoints(restaurant_id: int | None = None) -> list[WebhookEndpoint]:
    """The restaurant's endpoints (on `/webhooks`: every endpoint), in id order."""
    return webhooks.list_endpoints(db_session(), restaurant_id)


@_both(_ONE, "GET")
@_read()
@bp.response(200, WebhookEndpointSchema)
def get_endpoint(endpoint_id: int, restaurant_id: int | None = None) -> WebhookEndpoint:
    """One endpoint, its state and why it was disabled."""
    return webhooks.get_endpoint(db_session(), restaurant_id, endpoint_id)


@_both(_ONE, "PATCH")
@bp.guarded_write()
@bp.body(WebhookEndpointPatchSchema)
@bp.response(200, WebhookEndpointSchema)
@bp.documents_problems(404)
def update_endpoint(
    changes: dict[str, Any], endpoint_id: int, restaurant_id: int | None = None
) -> WebhookEndpoint:
    """Change the URL, events or description; `enabled` stops or resumes deliveries."""
    return webhooks.update_endpoint(
        db_session(), restaurant_id, endpoint_id, changes, allow_private=_allow_private()
    )


@_both(_ONE, "DELETE")
@bp.guarded_write()
@bp.response(204)
@bp.documents_problems(404)
def delete_endpoint(endpoint_id: int, restaurant_id: int | None = None) -> Response:
    """Remove the endpoint; nothing more is delivered to it."""
    webhooks.delete_endpoint(db_session(), restaurant_id, endpoint_id)
    return Response(status=204)


@_both(tuple(f"{path}/rotate-secret" for path in _ONE), "POST")
@bp.guarded_write()
@bp.response(200, WebhookEndpointSecretSchema)
@bp.documents_problems(400, 404, 413, 415)
def rotate_secret(endpoint_id: int, restaurant_id: int | None = None) -> WebhookEndpoint:
    """A new signing secret; the old one keeps signing beside it for 24 hours, so
    deliveries in flight and their retries verify with either."""
    return webhooks.rotate_secret(db_session(), restaurant_id, endpoint_id)


@_both(tuple(f"{path}/deliveries" for path in _ONE), "GET")
@_read()
@bp.response(200, WebhookDeliverySchema(many=True))
def list_deliveries(endpoint_id: int, restaurant_id: int | None = None) -> list[Any]:
    """The endpoint's latest 100 deliveries, newest first: event, state, attempts, the
    last response's status and duration, the next retry."""
    return list(webhooks.list_deliveries(db_session(), restaurant_id, endpoint_id))


@_both(tuple(f"{path}/deliveries/<event_id>/replay" for path in _ONE), "POST")
@bp.guarded_write()
@bp.response(202, WebhookDeliverySchema)
@bp.documents_problems(400, 404, 413, 415)
def replay(event_id: str, endpoint_id: int, restaurant_id: int | None = None) -> Any:
    """Send an event to the endpoint again (the same `webhook-id` and body), with a fresh
    round of retries."""
    return webhooks.replay(db_session(), restaurant_id, endpoint_id, event_id), 202


@_both(tuple(f"{path}/ping" for path in _ONE), "POST")
@bp.guarded_write()
@bp.response(202, WebhookPingSchema)
@bp.documents_problems(400, 404, 413, 415)
def ping(endpoint_id: int, restaurant_id: int | None = None) -> Any:
    """Queue a `webhook.ping` test event to the endpoint."""
    return {"event_id": webhooks.ping(db_session(), restaurant_id, endpoint_id)}, 202
