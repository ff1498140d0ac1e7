"""Reading a request body as JSON: every malformed body is a 400, never a crash.

orjson parses (fast, and it refuses nesting past 1,024 levels instead of recursing);
presto then refuses bodies nested deeper than `MAX_JSON_DEPTH`, which no presto body
needs. A string with an escaped lone surrogate (`"\\ud800"`) is valid JSON grammar that
orjson refuses: such a body is read again with the standard library, whose
`RecursionError` on deep nesting becomes a 400 too, so that the schema names the field
holding the surrogate in a 422, like any other text it refuses.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from werkzeug.exceptions import BadRequest

from presto.services.limits import MAX_JSON_DEPTH

TOO_DEEP = f"The body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels."


def parse_json_body(data: bytes) -> Any:
    """The JSON value of `data`; `BadRequest` (400) for invalid UTF-8, JSON or depth."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The body is not valid UTF-8.") from None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise BadRequest(TOO_DEEP) from None
        if "surrogate" not in str(exc):
            raise BadRequest(f"The body is not valid JSON: {exc}.") from None
        value = _load_with_lone_surrogates(text)
    if nesting_exceeds(value, MAX_JSON_DEPTH):
        raise BadRequest(TOO_DEEP)
    return value


def _load_with_lone_surrogates(text: str) -> Any:
    """The standard library's reading, which keeps lone surrogates for the schema to refuse."""
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest(TOO_DEEP) from None
    except ValueError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in `value` nest more than `limit` levels (no recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
