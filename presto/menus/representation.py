"""How a menu call is answered, the same from Flask's route (`presto.api.menu_routes`) and
from the warm path's cache (`presto.serving.fastpath`, `presto.serving.cache`): which calls
are published and under which query strings, each encoding's own strong tag (RFC 9110
8.8.3), `Vary`, `Cache-Control` and the header that says until when a menu holds."""

from __future__ import annotations

from typing import Any

from presto.services.etags import decoded_etag, encoded_etag
from presto.storage.published_menus import DEFAULT_VARIANT

Headers = tuple[tuple[str, str], ...]

# Clients and proxies may keep the menu but must revalidate it: a 304 by ETag is cheap.
MENU_CACHE_CONTROL = "public, no-cache"
# Unix time until which a menu response holds (it shows schedules); "0": never cache it.
# The warm path (presto.serving.fastpath) reads it and strips it from the response.
VALID_UNTIL_HEADER = "X-Presto-Valid-Until"
# Both encodings of a menu answer every menu call: caches must key them by the request's.
VARY = ("Vary", "Accept-Encoding")
# What every menu call's answer carries, whatever its encoding.
MENU_HEADERS: Headers = (("Cache-Control", MENU_CACHE_CONTROL), VARY)
# The headers of a published body's answer besides its tag and coding, as the route's
# answer holds them (the cache keeps these of a response: `presto.serving.cache`).
PUBLISHED_HEADERS: Headers = (
    ("Content-Type", "application/json"),
    ("Cache-Control", MENU_CACHE_CONTROL),
)
# The only content coding menus are stored and answered in besides identity.
GZIP = "gzip"

# The menu calls that are published, by their `(all, shape)`; filtered calls are not.
VARIANTS: dict[tuple[bool, str], str] = {
    (False, "nested"): DEFAULT_VARIANT,
    (True, "nested"): "all",
    (False, "normalized"): "normalized",
    (True, "normalized"): "normalized,all",
}
# The query of each published variant: what rendering it asks for.
QUERY_OF_VARIANT: dict[str, tuple[bool, str]] = {
    variant: query for query, variant in VARIANTS.items()
}

# The exact query strings of those calls, as clients send them, by variant name; the async
# layer reads these from the published store without going through Flask.
QUERY_STRINGS: dict[str, str] = {
    "": DEFAULT_VARIANT,
    "all=true": "all",
    "shape=normalized": "normalized",
    "shape=normalized&all=true": "normalized,all",
    "all=true&shape=normalized": "normalized,all",
}


def published_variant(query: dict[str, Any]) -> str | None:
    """The published menu call a loaded query asks for; None for a filtered or `at=`
    call, which is rendered for the request."""
    if (
        query.get("at") is not None
        or query.get("available") is not None
        or query.get("category") is not None
        or query.get("external_id") is not None
        or query.get("tags")
        or query.get("exclude_allergens")
    ):
        return None
    return VARIANTS[(query["all"], query["shape"])]


def gzip_etag(etag: str) -> str:
    """The tag of the gzip representation of the menu tagged `etag`."""
    return encoded_etag(etag, GZIP)


def identity_etag(etag: str) -> str:
    """The tag of the identity representation whose gzip tag is `etag`."""
    return decoded_etag(etag, GZIP)


def encoding_headers(etag: str, gzip: bool) -> Headers:
    """The headers one encoding of a menu adds to the rest: its own tag (already encoded
    for gzip), `Vary` and, for gzip, the coding."""
    if gzip:
        return (("ETag", etag), VARY, ("Content-Encoding", GZIP))
    return (("ETag", etag), VARY)
