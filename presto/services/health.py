"""Readiness: whether this process can serve, checked against its database.

The check runs in a thread of its own so that a database that hangs (a dropped network
path rather than a refused connection) still gets an answer within the bound.
"""

from __future__ import annotations

import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from presto.errors import ServiceUnavailableError
from presto.storage import migrate

log = logging.getLogger(__name__)

# `/readyz`'s reason when the database refuses or fails: the details are in the log.
DATABASE_DOES_NOT_ANSWER = "The database does not answer; the server's log says why."

# Checks wait here rather than in the request's thread; two threads, so one stuck on a
# hung connection does not hold up the next check.
_CHECKS = ThreadPoolExecutor(2, thread_name_prefix="presto-readiness")


@functools.cache
def migration_heads() -> frozenset[str]:
    """The newest migration revisions of this presto (read once: the scripts don't change)."""
    return frozenset(migrate.heads())


def schema_revisions(engine: Engine) -> frozenset[str]:
    """The database answers a query, and the revisions its schema is at."""
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def check_ready(engine: Engine, timeout: float) -> dict[str, str]:
    """The database and schema state when ready; `ServiceUnavailableError` saying what is
    wrong otherwise."""
    future = _CHECKS.submit(schema_revisions, engine)
    try:
        revisions = future.result(timeout)
    except FutureTimeout:
        log.warning("readiness: the database did not answer within %g s", timeout)
        raise ServiceUnavailableError(
            f"The database did not answer within {timeout:g} s."
        ) from None
    except SQLAlchemyError as exc:
        # The driver's text names hosts, ports and users: the log has it, not the public body.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        log.warning("readiness: the database does not answer: %s", reason)
        raise ServiceUnavailableError(DATABASE_DOES_NOT_ANSWER) from None
    heads = migration_heads()
    if revisions != heads:
        found = ", ".join(sorted(revisions)) or "none"
        raise ServiceUnavailableError(
            f"The database schema is at revision {found}, not at {', '.join(sorted(heads))}: "
            "run `presto db upgrade`."
        )
    return {"status": "ready", "database": "ok", "schema": ", ".join(sorted(revisions))}


def check_processes(failing: list[str]) -> None:
    """`ServiceUnavailableError` naming the helper processes that cannot stay up."""
    if failing:
        names = ", ".join(failing)
        raise ServiceUnavailableError(
            f"The {names} process keeps dying and cannot stay up; see the log."
        )


def with_roles(ready: dict[str, str], refusal: str | None, note: str | None) -> dict[str, str]:
    """`ready` with a note on the database (a replica down); `ServiceUnavailableError` if a
    connection beside the pool cannot be trusted (a listener that does not hear itself)."""
    if refusal is not None:
        raise ServiceUnavailableError(refusal)
    if note is None:
        return ready
    return {**ready, "database": f"ok; {note}"}
