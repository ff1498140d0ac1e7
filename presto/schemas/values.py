"""Field builders and value shapes that requests and answers share: names, external ids,
https URLs, vocabularies, instants and schedule windows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from presto.schema_fields import Text
from presto.services import schedules
from presto.services.sold_out import UNTIL_FURTHER_NOTICE
from presto.storage.models import EXTERNAL_ID_LENGTH, NAME_LENGTH

# What a request gets where it sent something else than an object (an array, a string).
NOT_AN_OBJECT = "Must be a JSON object."


class ObjectSchema(Schema):
    """A JSON object a request sends: unknown keys refused, and a value that is no object
    refused in words that say so, not marshmallow's "Invalid input type."."""

    class Meta:
        unknown = RAISE

    error_messages = {"type": NOT_AN_OBJECT}  # noqa: RUF012 (marshmallow's convention)


class WindowSchema(ObjectSchema):
    """A weekly window of an item's schedule, in the restaurant's local time."""

    days = fields.List(
        fields.String(validate=validate.OneOf(schedules.DAYS)),
        required=True,
        validate=validate.Length(1, len(schedules.DAYS)),
        metadata={"description": "Days the window opens on: mon, tue, ... sun."},
    )
    start = fields.String(
        required=True, metadata={"description": "Local opening time HH:MM.", "example": "07:00"}
    )
    end = fields.String(
        required=True,
        metadata={
            "description": "Local closing time HH:MM (24:00: midnight); at or before start: "
            "the next day.",
            "example": "11:00",
        },
    )

    @validates_schema
    def _window(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors = schedules.window_errors(data)
        if errors:
            raise ValidationError(errors)


_HTTPS_URL = validate.URL(schemes={"https"}, require_tld=True)
# RFC 3986: no spaces or control characters in a URL; anything else is percent-encoded.
_URL_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def https_url(value: str) -> None:
    """An absolute https URL with a host name, in URL characters only."""
    try:
        if not _URL_CHARACTERS.fullmatch(value):
            raise ValidationError("")
        _HTTPS_URL(value)
    except ValidationError as error:
        raise ValidationError("Must be an absolute https URL.") from error


def vocabulary(words: tuple[str, ...], what: str) -> fields.List:
    """A list of distinct words of a fixed vocabulary."""
    return fields.List(
        fields.String(validate=validate.OneOf(words)),
        validate=[validate.Length(max=len(words)), no_duplicates],
        metadata={"description": f"{what}: any of {', '.join(words)}."},
    )


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _printable(value: str) -> None:
    if not value.isprintable():
        raise ValidationError("Must be printable characters only (no control characters).")


def external_id_field(description: str, **kwargs: Any) -> fields.String:
    """An integrator's own key of a row (a POS PLU, SKU or GUID): 1 to
    `EXTERNAL_ID_LENGTH` printable characters, not blank."""
    return Text(
        validate=[validate.Length(1, EXTERNAL_ID_LENGTH), _printable, _not_blank],
        metadata={"description": description},
        **kwargs,
    )


class Instant(fields.AwareDateTime):
    """An RFC 3339 instant with an offset, from 1970 to `UNTIL_FURTHER_NOTICE`, kept to the
    whole second rounded up (the unit of the menu's validity and its `ETag`)."""

    RANGE = validate.Range(min=datetime(1970, 1, 1, tzinfo=UTC), max=UNTIL_FURTHER_NOTICE)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", validate=self.RANGE, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        instant: datetime = super()._deserialize(value, attr, data, **kwargs)
        # Checked before the arithmetic below, which fails past the calendar's ends (year 1
        # with an offset east of UTC, year 9999 west of it); comparing does not.
        self.RANGE(instant)
        if instant.microsecond and instant < UNTIL_FURTHER_NOTICE:
            instant = instant.replace(microsecond=0) + timedelta(seconds=1)
        return instant.astimezone(UTC)


def name_field(*, required: bool = False) -> fields.String:
    """A restaurant's or an item's name: 1 to `NAME_LENGTH` characters, not blank."""
    return Text(required=required, validate=[validate.Length(1, NAME_LENGTH), _not_blank])


def no_duplicates(values: list[Any]) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValidationError(f"{value} appears more than once.")
        seen.add(value)
