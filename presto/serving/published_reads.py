"""Published menus read by the warm path on a miss, without Flask.

A miss of an unfiltered menu call (`presto.services.published.QUERY_STRINGS`) is one
primary-key query for ready bytes, so it skips the WSGI bridge, Flask and the request
session. Each of a few threads of its own keeps one connection in autocommit mode: one
round trip per read, with no pool checkout, ping or rollback around it (on this machine a
PostgreSQL round trip takes about 0.4 ms, three of them were most of a miss). The statement
is compiled once and run on the driver's cursor: SQLAlchemy's execution layer cost 175 us
of CPU per read here, nearly as much as the driver's own 215 us. A read that
finds no current body, an unknown restaurant or a database error returns None, and the
request goes to Flask, which renders, answers 404 or reports the error as usual.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.pool import PoolProxiedConnection

from presto.config import Settings
from presto.errors import NotFoundError
from presto.services.published import READ_PUBLISHED, Published, current_published
from presto.serving.admission import Admission
from presto.storage.engine import make_engine


class PublishedReads:
    """Reads of published menu bodies on `threads` threads, each with its own connection,
    admitted like requests (`Admission.read`: not while the breaker is open or the queue
    is full)."""

    def __init__(self, settings: Settings, admission: Admission) -> None:
        self.engine = make_engine(
            settings.database_url,
            pool_size=settings.threads,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.statement_timeout,
        )
        self.executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="presto-reads")
        self.admission = admission
        compiled = READ_PUBLISHED.compile(dialect=self.engine.dialect)
        self._sql = compiled.string
        # Positional drivers (sqlite3) take the values in this order; named ones a dict.
        self._order = compiled.positiontup if compiled.positional else None
        self._local = threading.local()
        self._connections: list[PoolProxiedConnection] = []
        self._lock = threading.Lock()

    async def read(self, restaurant_id: int, variant: str) -> Published | None:
        """The current published body, or None: Flask answers the request."""
        loop = asyncio.get_running_loop()
        return await self.admission.read(
            lambda: loop.run_in_executor(self.executor, self._read, restaurant_id, variant)
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self.engine.dispose()

    def _read(self, restaurant_id: int, variant: str) -> Published | None:
        values = {"restaurant_id": restaurant_id, "variant": variant}
        params: Any = values if self._order is None else [values[name] for name in self._order]
        try:
            cursor = self._connection().cursor()
            try:
                cursor.execute(self._sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
            return current_published(row, restaurant_id, time.time())
        except NotFoundError:
            return None
        except self.engine.dialect.loaded_dbapi.Error:
            self._drop()
            return None

    def _connection(self) -> PoolProxiedConnection:
        connection: PoolProxiedConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.engine.raw_connection()
            dbapi_connection = connection.dbapi_connection
            assert dbapi_connection is not None
            self.engine.dialect.set_isolation_level(dbapi_connection, "AUTOCOMMIT")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _drop(self) -> None:
        """Forget this thread's connection after an error; the next read opens another."""
        connection: PoolProxiedConnection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._connections.remove(connection)
            connection.invalidate()
