"""One more try for a request whose database connection was lost under it.

A pooled connection can die while a request uses it: the server restarted, a pooler or
an operator (`pg_terminate_backend`) ended it, a network path dropped it. The pool's ping
finds such a connection only at checkout; one that dies mid-request fails the request,
though the database is fine and a new connection would answer. So the view runs again,
once, on a fresh session, when the error says the connection was lost and running it
again cannot apply a change twice: a read, or a write whose commit had not begun (its
transaction died with the connection). A write lost during its commit may have been
applied; it gets the 503 with `Retry-After` as before, for the client to check.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, g, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# The key in `Session.info` set when the session starts to commit.
COMMIT_STARTED = "presto.commit_started"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RetryingFlask(Flask):
    """Flask, running a view again once when its database connection was lost."""

    def dispatch_request(self) -> ResponseReturnValue:
        try:
            return super().dispatch_request()
        except DBAPIError as exc:
            if not exc.connection_invalidated or not _may_run_again():
                raise
            log.warning(
                "database connection lost on %s %s; running it again: %s",
                request.method, request.path, exc.orig,
            )  # fmt: skip
            _discard_session()
            return super().dispatch_request()


def track_commits(factory: sessionmaker[Session]) -> None:
    """Mark each session of `factory` when it starts to commit."""

    @sa.event.listens_for(factory, "before_commit")
    def _committing(session: Session) -> None:
        session.info[COMMIT_STARTED] = True


def _may_run_again() -> bool:
    session: Session | None = g.get("db_session")
    committed = session is not None and session.info.get(COMMIT_STARTED, False)
    return request.method in SAFE_METHODS or not committed


def _discard_session() -> None:
    """Close the request's session (its connection is gone) so the next use opens one."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
