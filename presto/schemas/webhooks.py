"""marshmallow schemas of webhook endpoints and their deliveries: what a registration or a
change may send, and what the API shows of them (the secret only when it is made)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from presto.schema_fields import StrictBoolean, Text
from presto.services.outbox import EVENT_TYPES
from presto.storage.models import DESCRIPTION_LENGTH, WEBHOOK_URL_LENGTH

_URL_HELP = (
    "Where events are POSTed: https, resolving to public addresses only (http and private "
    "addresses with `--webhook-allow-private`)."
)


def _url(*, required: bool = False) -> Text:
    return Text(
        validate=validate.Length(1, WEBHOOK_URL_LENGTH),
        metadata={"description": _URL_HELP},
        required=required,
    )


def _events(*, required: bool = False) -> fields.List:
    return fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        validate=validate.Length(1, len(EVENT_TYPES)),
        metadata={"description": "The event types the endpoint hears."},
        required=required,
    )


class WebhookEndpointCreateSchema(Schema):
    """A new endpoint: its URL, the events it hears, a note for its owner."""

    class Meta:
        unknown = RAISE

    url = _url(required=True)
    events = _events(required=True)
    description = Text(validate=validate.Length(max=DESCRIPTION_LENGTH), load_default="")


class WebhookEndpointPatchSchema(Schema):
    """The endpoint fields a `PATCH` may change; every one is optional."""

    class Meta:
        unknown = RAISE

    url = _url()
    events = _events()
    description = Text(validate=validate.Length(max=DESCRIPTION_LENGTH))
    enabled = StrictBoolean(
        metadata={"description": "false stops deliveries; true resumes them (and clears the "
                  "reason it was disabled)."}
    )  # fmt: skip


class WebhookEndpointSchema(Schema):
    """An endpoint as the API shows it (without its secret)."""

    id = fields.Integer(dump_only=True)
    restaurant_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Null: the endpoint hears every restaurant."},
    )
    url = fields.String(dump_only=True)
    events = fields.List(fields.String(), dump_only=True)
    description = fields.String(dump_only=True)
    enabled = fields.Boolean(dump_only=True)
    disabled_reason = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Why deliveries stopped (a 410, the last retry failing)."},
    )
    created_at = fields.AwareDateTime(dump_only=True)
    previous_secret_until = fields.AwareDateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Until when the secret before the last rotation also signs."},
    )


class WebhookEndpointSecretSchema(WebhookEndpointSchema):
    """An endpoint with its signing secret: shown when it is made or rotated, never again."""

    secret = fields.String(
        dump_only=True,
        metadata={"description": "`whsec_` and base64 of 32 random bytes; verify with it."},
    )


class WebhookDeliverySchema(Schema):
    """One event owed to an endpoint, and its latest attempt."""

    event_id = fields.String(
        dump_only=True, metadata={"description": "The `webhook-id` of every attempt."}
    )
    event_type = fields.String(dump_only=True)
    state = fields.String(
        dump_only=True,
        metadata={"description": "`pending`, `delivered`, `failed` or `cancelled`."},
    )
    attempts = fields.Integer(dump_only=True)
    last_status = fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "The last response's status."}
    )
    last_error = fields.String(dump_only=True, allow_none=True)
    last_duration_ms = fields.Integer(dump_only=True, allow_none=True)
    last_attempt_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    next_attempt_at = fields.AwareDateTime(
        dump_only=True, allow_none=True, metadata={"description": "The next retry, if any."}
    )
    delivered_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class WebhookPingSchema(Schema):
    """The test event queued by `ping`."""

    event_id = fields.String(dump_only=True)
