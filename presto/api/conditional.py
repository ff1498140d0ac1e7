"""Conditional requests: `ETag` on responses, `If-None-Match` on reads (304) and
`If-Match` on writes (412), after RFC 9110 section 13."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, request

from presto.errors import PreconditionFailedError
from presto.services.etags import Precondition


def etag_header(tag: str) -> dict[str, str]:
    """The `ETag` header of a strong entity tag."""
    return {"ETag": f'"{tag}"'}


def not_modified(tag: str, *variants: str) -> Response | None:
    """A 304 response if the request's `If-None-Match` matches `tag` (or the tag of another
    representation of the same version, such as its gzip encoding), else None."""
    if request.if_none_match:
        for candidate in (tag, *variants):
            if request.if_none_match.contains_weak(candidate):
                return Response(status=304, headers=etag_header(candidate))
    return None


def if_match() -> Precondition:
    """The request's `If-Match` as a precondition for a service-layer write.

    Without the header every version matches; with it, the current entity tag must be
    one of the listed (strong comparison) or the header must be `*`.
    """
    condition = request.if_match

    def check(current: Callable[[], str]) -> None:
        if not condition or condition.star_tag:
            return
        tag = current()
        if not condition.contains(tag):
            raise PreconditionFailedError(
                f'If-Match does not name the current version, "{tag}".', etag=f'"{tag}"'
            )

    return check
