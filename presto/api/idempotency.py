"""The `Idempotency-Key` request header on writes: a retry gets the first answer again.

`idempotent` wraps every write view (inside the key check, so the key's owner is known).
Without the header a request runs as always. With it, the first request is recorded and
processed, its write's transaction marks the record, and a 2xx answer is stored; a retry
with the same key and request gets that answer with `Idempotent-Replayed: true`, one while
the first is in flight 409, and one with another request 422 (presto.services.idempotency).
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from flask import Response, current_app, g, make_response, request
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest

from presto.api.session import db_session
from presto.services import idempotency
from presto.storage.models import IDEMPOTENCY_KEY_LENGTH

View = TypeVar("View", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# The app config entry of the retention in seconds (`--idempotency-retention`).
RETENTION = "PRESTO_IDEMPOTENCY_RETENTION"
# The headers of a stored answer that a replay repeats.
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
# An `Idempotency-Key` value: an RFC 8941 sf-string (printable ASCII in double quotes,
# `\"` and `\\` escaped), or, as many clients send one, a bare token of visible ASCII
# without quotes; either of 1 to `IDEMPOTENCY_KEY_LENGTH` characters.
KEY_PATTERN = (
    rf'^"(?:[ !#-\[\]-~]|\\["\\]){{1,{IDEMPOTENCY_KEY_LENGTH}}}"$'
    rf"|^[!#-~]{{1,{IDEMPOTENCY_KEY_LENGTH}}}$"
)
_KEY = re.compile(KEY_PATTERN)


def parse_key(value: str) -> str:
    """The key an `Idempotency-Key` field value carries, or 400; `"abc"` and `abc` are the
    same key."""
    # Whitespace around a field value is not part of it (RFC 9110 5.5); a client library
    # may leave a line break there, as regular expressions' `$` allows one.
    text = value.strip(" \t\r\n")
    if _KEY.fullmatch(text) is None:
        raise BadRequest(
            f"{HEADER} must be a Structured Field string of 1 to {IDEMPOTENCY_KEY_LENGTH} "
            "printable ASCII characters in double quotes, e.g. "
            '"8e03978e-40d5-43e8-bc93-6894a57f9324" (or the same without quotes and spaces).'
        )
    if not text.startswith('"'):
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def fingerprint() -> str:
    """What makes two requests the same request: method, path with query, and body."""
    digest = hashlib.sha256(f"{request.method}\n{request.full_path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotent(view: View) -> View:
    """Honour `Idempotency-Key` on a write view (`g.api_key` must be set)."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        value = request.headers.get(HEADER)
        if value is None:
            return view(*args, **kwargs)
        key = parse_key(value)
        session, api_key_id = db_session(), g.api_key.id
        now = datetime.fromtimestamp(time.time(), UTC)
        retention = current_app.config[RETENTION]
        stored = idempotency.claim(session, api_key_id, key, fingerprint(), now, retention)
        if stored is not None:
            return _replay(stored)
        return _first(session, api_key_id, key, lambda: view(*args, **kwargs))

    return cast(View, guarded)


def _first(session: Session, api_key_id: int, key: str, run: Callable[[], Any]) -> Response:
    """Run the first request with `key`, marking its record in its write's transaction and
    storing its answer, or forgetting the key if it failed before anything committed."""
    committed: list[bool] = []

    def mark(session: Session) -> None:
        idempotency.mark_committed(session, api_key_id, key)
        committed.append(True)

    event.listen(session, "before_commit", mark)
    try:
        response = make_response(run())
    except Exception:
        event.remove(session, "before_commit", mark)
        if not committed:
            idempotency.release(session, api_key_id, key)
        raise
    event.remove(session, "before_commit", mark)
    if 200 <= response.status_code < 300 or committed:
        kept = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        outcome = idempotency.Outcome(response.status_code, kept, response.get_data())
        idempotency.store_outcome(session, api_key_id, key, outcome)
    else:
        idempotency.release(session, api_key_id, key)
    return response


def _replay(stored: idempotency.Outcome) -> Response:
    """The stored answer again, marked as a replay."""
    response = Response(stored.body, status=stored.status)
    response.headers.update(stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response
