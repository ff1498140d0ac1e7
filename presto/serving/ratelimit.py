"""Rate limits: writes per API key, failed authentications per client address.

Each limit is a token bucket per key: `limit` requests at once, refilled evenly over
`window` seconds. Answers carry the limit as IETF draft `ratelimit-headers` fields:
`RateLimit-Policy: "writes";q=120;w=60` and `RateLimit: "writes";r=7;t=55` (requests left,
seconds until the bucket is full again); a refused request gets 429 with `Retry-After`.

The buckets live in the worker's memory: with N workers a client can get up to N times the
limit, as the kernel spreads its connections (doc/reliability.md). A token bucket of a
dozen lines is simpler than a library built around shared storage backends, and it answers
the draft headers' remaining count and reset time directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Buckets kept per limit before full ones (which carry no state) are forgotten.
MAX_KEYS = 100_000


@dataclass(frozen=True)
class RateLimit:
    """`limit` requests per `window` seconds, named `name` in the headers."""

    name: str
    limit: int
    window: float

    @property
    def policy(self) -> str:
        """The `RateLimit-Policy` field value."""
        return f'"{self.name}";q={self.limit};w={math.ceil(self.window)}'


@dataclass(frozen=True)
class Verdict:
    """What a bucket said about one request."""

    allowed: bool
    remaining: int
    # Seconds until the bucket is full again, and until the next request is allowed.
    reset: float
    retry_after: float

    def headers(self, limit: RateLimit) -> dict[str, str]:
        """The draft's `RateLimit-Policy` and `RateLimit` fields, and `Retry-After` on a 429."""
        return {"RateLimit-Policy": limit.policy, **self.changing_headers(limit)}

    def changing_headers(self, limit: RateLimit) -> dict[str, str]:
        """The fields that change from answer to answer: `RateLimit`, and `Retry-After`
        on a 429 (a prepared 429 carries `RateLimit-Policy` in its head)."""
        headers = {"RateLimit": f'"{limit.name}";r={self.remaining};t={math.ceil(self.reset)}'}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class TokenBuckets:
    """One token bucket per key under one `RateLimit`; event loop thread only."""

    def __init__(self, limit: RateLimit, *, max_keys: int = MAX_KEYS) -> None:
        self.limit = limit
        self.rate = limit.limit / limit.window
        self.max_keys = max_keys
        # key -> (tokens, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    def _tokens(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self.limit.limit, now))
        return min(self.limit.limit, tokens + (now - then) * self.rate)

    def check(self, key: str, now: float) -> Verdict:
        """Whether `key` has a request left, without spending it."""
        tokens = self._tokens(key, now)
        return self._verdict(tokens, allowed=tokens >= 1)

    def take(self, key: str, now: float) -> Verdict:
        """Spend one request of `key`'s bucket if it has one."""
        tokens = self._tokens(key, now)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens, now)
        return self._verdict(tokens, allowed=allowed)

    def _verdict(self, tokens: float, *, allowed: bool) -> Verdict:
        return Verdict(
            allowed=allowed,
            remaining=int(tokens),
            reset=(self.limit.limit - tokens) / self.rate,
            retry_after=max(0.0, 1 - tokens) / self.rate,
        )

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled; if too many are still in use, the oldest half."""
        self._buckets = {
            key: (tokens, then)
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * self.rate < self.limit.limit
        }
        if len(self._buckets) >= self.max_keys:
            keep = list(self._buckets.items())[len(self._buckets) // 2 :]
            self._buckets = dict(keep)
