"""Published menus read by the warm path on a miss, without Flask.

A miss of an unfiltered menu call (`presto.services.published.QUERY_STRINGS`) is one
primary-key query for ready bytes, so it skips the WSGI bridge, Flask and the request
session. Each of a few threads of its own keeps one connection in autocommit mode: one
round trip per read, with no pool checkout, ping or rollback around it (on this machine a
PostgreSQL round trip takes about 0.4 ms, three of them were most of a miss). A read that
finds no current body, an unknown restaurant or a database error returns None, and the
request goes to Flask, which renders, answers 404 or reports the error as usual.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from presto.config import Settings
from presto.errors import NotFoundError
from presto.services.published import Published, read_published
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
        self._local = threading.local()
        self._connections: list[Connection] = []
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
        try:
            return read_published(self._connection(), restaurant_id, variant, time.time())
        except NotFoundError:
            return None
        except SQLAlchemyError:
            self._drop()
            return None

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _drop(self) -> None:
        """Forget this thread's connection after an error; the next read opens another."""
        connection: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._connections.remove(connection)
            connection.invalidate()
            connection.close()
