"""Content codings: which a client accepts (RFC 9110 12.5.3)."""

from __future__ import annotations

import functools

# WSGI environ key set by the async layer's menu cache on a miss: answer a published menu
# with its gzip bytes whatever the client accepts, as the cache answers each client itself.
PREFER_GZIP = "presto.prefer_gzip"


@functools.lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str) -> bool:
    """True if an `Accept-Encoding` value admits gzip (RFC 9110 12.5.3): named with a
    non-zero weight, or `*` with one while gzip is not named. Clients send a few distinct
    values, each parsed once."""
    if accept_encoding == "gzip":
        return True
    accept_encoding = accept_encoding.lower()
    if "gzip" not in accept_encoding and "*" not in accept_encoding:
        return False
    weights: dict[str, float] = {}
    for member in accept_encoding.split(","):
        coding, _, params = member.partition(";")
        weight = 1.0
        name, _, value = params.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        weights[coding.strip().lower()] = weight
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False
