"""Whether the database can be reached: a circuit breaker on the engine.

A request that cannot connect to the database waits for the connect timeout once; after that
the breaker is open and every request that needs the database fails at once
(`DatabaseUnavailableError`, a 503) instead of each waiting for its own timeout. While it
is open, one background thread tries a connection every `PROBE_INTERVAL` seconds; the first
that works closes the breaker and replaces the pool, so no connection that died with the
database is handed out again. The serving layer reads `available` to decide when a cached
menu may be served stale (RFC 5861 `stale-if-error`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, ExceptionContext

from presto.errors import DatabaseUnavailableError

log = logging.getLogger(__name__)

# Seconds between two connection attempts while the database is unreachable.
PROBE_INTERVAL = 0.5


class DatabaseAvailability:
    """The circuit breaker of one engine: closed (`available`) or open."""

    def __init__(self, engine: Engine, *, probe_interval: float = PROBE_INTERVAL) -> None:
        self.engine = engine
        self.probe_interval = probe_interval
        self.available = True
        # Times the breaker opened; when it last changed (time.time()), for operators.
        self.openings = 0
        self.changed_at = time.time()
        self._lock = threading.Lock()
        self._probing = threading.local()
        self._stopped = threading.Event()
        sa.event.listen(engine, "handle_error", self._on_error)
        sa.event.listen(engine, "do_connect", self._before_connect)

    def _on_error(self, context: ExceptionContext) -> None:
        """Open when a new connection cannot be made.

        Not on an error of one statement, nor on a connection found dead (by the pool's
        ping or mid-statement): the pool replaces that one, and only if the new connection
        fails too is the database unreachable.
        """
        if getattr(self._probing, "active", False):
            return
        if context.connection is None and not context.is_pre_ping:
            self.open(context.original_exception)

    def _before_connect(self, *_args: Any) -> None:
        """While open, a new connection fails at once (the probe's own excepted)."""
        if not self.available and not getattr(self._probing, "active", False):
            raise DatabaseUnavailableError("The database cannot be reached; try again shortly.")

    def open(self, cause: BaseException | None = None) -> None:
        """Mark the database unreachable and start probing for its return."""
        with self._lock:
            if not self.available or self._stopped.is_set():
                return
            self.available = False
            self.openings += 1
            self.changed_at = time.time()
        log.error("database unreachable, answering 503 until it returns: %s", cause)
        threading.Thread(target=self._probe_until_back, name="presto-db-probe", daemon=True).start()

    def _probe_until_back(self) -> None:
        self._probing.active = True
        while not self._stopped.wait(self.probe_interval):
            if self.probe():
                # Connections pooled before the outage are dead: start a new pool.
                self.engine.dispose()
                with self._lock:
                    self.available = True
                    self.changed_at = time.time()
                log.warning("database reachable again")
                return

    def probe(self) -> bool:
        """True if a new connection can run a query now."""
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception:
            return False
        return True

    def close(self) -> None:
        """Stop probing (at shutdown)."""
        self._stopped.set()
