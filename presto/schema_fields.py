"""marshmallow fields that accept exactly what the OpenAPI document says, on every backend.

- `Text`: a string without C0 control characters (tab, newline and carriage return
  aside) and without lone surrogates. PostgreSQL refuses NUL in text and no database
  driver can encode a lone surrogate, while SQLite stores both: refusing them here makes
  both backends hold the same set of strings.
- `StrictBoolean`: JSON `true` or `false` only; `0`, `1` and `"yes"` are not booleans.
- `StrictInteger`: a JSON integer only; no float, no string, no boolean.
- `Id`: a `StrictInteger` in the range of an id column.
- `QueryBoolean`: a boolean in a query string: `true` or `false` (`1` and `0` too), not
  marshmallow's wider set (`yes`, `on`, `t`, ...).
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import fields, validate

from presto.storage.models import MAX_ID

# C0 controls but tab, newline and carriage return; and lone UTF-16 surrogates.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


class Text(fields.String):
    """A string free of control characters (but tab, newline, CR) and of lone surrogates."""

    default_error_messages = {  # noqa: RUF012 (marshmallow's convention)
        "control": "Must not contain control characters (other than tab, newline, CR).",
        "surrogate": "Must not contain lone surrogates (not valid Unicode).",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        refused = _REFUSED.search(text)
        if refused is not None:
            raise self.make_error("surrogate" if refused[0] >= "\ud800" else "control")
        return text


class StrictBoolean(fields.Boolean):
    """JSON `true` or `false`, nothing that merely looks like one."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class QueryBoolean(fields.Boolean):
    """A boolean query parameter: `true`/`false`, or `1`/`0`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true", "1"}, falsy={"false", "0"}, **kwargs)


class StrictInteger(fields.Integer):
    """A JSON integer: not a float, a string or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def Id(**kwargs: Any) -> StrictInteger:
    """An item's id in a body: 1 to `MAX_ID`, the range of the id columns."""
    return StrictInteger(validate=validate.Range(1, MAX_ID), **kwargs)
