"""What an attempt to deliver a webhook sends and what its answer means, as the Standard
Webhooks specification says: the signature headers, and after each answer whether the
event is delivered, retried (when) or given up on (disabling the endpoint).

A 2xx delivers. 410 Gone disables the endpoint at once. Anything else (another status, a
redirect, a timeout, a refused connection) is retried after the next step of `SCHEDULE`
(with up to a tenth of jitter; a 429 or 503's `Retry-After` waits longer when it asks
to); failing the last retry disables the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

# Seconds between attempts: the first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
# 10 h (Svix's schedule, which the specification's authors run).
SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Attempts in all: the first and one per step of the schedule.
MAX_ATTEMPTS = len(SCHEDULE) + 1
# The longest `Retry-After` honoured (seconds); a longer one waits this long.
MAX_RETRY_AFTER = 36000
# Share of a step added at random, so that endpoints failing together retry apart.
JITTER = 0.1


def signature(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}` under the secret's key (the
    base64 after `whsec_`)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: list[str], message_id: str, timestamp: int, body: str
) -> dict[str, str]:
    """The headers of one attempt: one signature per secret, space-separated, so that a
    consumer holding either secret during a rotation verifies."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }


@dataclass(frozen=True)
class Verdict:
    """After an attempt: the delivery's new state, when to try again (pending only), and
    why the endpoint is disabled (None: it stays enabled)."""

    state: str
    next_attempt_at: datetime | None = None
    disable_reason: str | None = None


def retry_after_seconds(value: str | None) -> float | None:
    """The seconds of a `Retry-After` header (delay seconds only; a date is ignored)."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)


def verdict(
    status: int | None,
    attempts: int,
    now: datetime,
    *,
    scale: float = 1.0,
    retry_after: float | None = None,
) -> Verdict:
    """What follows an attempt that got `status` (None: no answer), `attempts` being the
    attempts made so far, this one included; `scale` shrinks the schedule (tests)."""
    if status is not None and 200 <= status < 300:
        return Verdict("delivered")
    if status == 410:
        return Verdict("failed", disable_reason="the endpoint answered 410 Gone")
    if attempts >= MAX_ATTEMPTS:
        return Verdict(
            "failed", disable_reason=f"every attempt failed ({attempts}, the last answered "
            f"{status if status is not None else 'nothing'})",
        )  # fmt: skip
    delay = SCHEDULE[attempts - 1] * scale
    delay += random.uniform(0, JITTER * delay)
    if retry_after is not None and status in (429, 503):
        delay = max(delay, retry_after)
    return Verdict("pending", next_attempt_at=now + timedelta(seconds=delay))
