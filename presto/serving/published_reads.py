"""Published menus read by the warm path on a miss, without Flask.

A miss of an unfiltered menu call (`presto.menus.representation.QUERY_STRINGS`) is one
primary-key query for ready bytes, so it skips the WSGI bridge, Flask and the request
session. On PostgreSQL the reads run on the event loop (`LoopPublishedReads`): up to
`threads` connections in autocommit mode, the statement prepared once on each, sent and
answered through libpq's asynchronous API: one round trip and about 55 us of CPU a read
(`LoopPublishedReads`). Behind a transaction-mode pooler the reads that wait go out
together, one call of a function on one of two connections (`BatchedPublishedReads`).
Elsewhere (SQLite) each of a few threads of its own keeps one connection
(`ThreadPublishedReads`) and runs the compiled statement on the driver's cursor, skipping
SQLAlchemy's execution layer (175 us of CPU a read on PostgreSQL, nearly as much as the
driver's own). A read that finds no current body, an unknown restaurant or a database
error returns None, and the request goes to Flask, which renders, answers 404 or reports
the error as usual.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol, cast

import psycopg
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.pool import PoolProxiedConnection

from presto.config import Settings
from presto.errors import NotFoundError
from presto.services.published import current_published
from presto.serving.admission import Admission
from presto.storage.engine import make_engine
from presto.storage.published_menus import READ_PUBLISHED, READ_PUBLISHED_MANY, Published
from presto.storage.roles import TRANSACTION_POOLER, session_timeouts


def _current(row: Sequence[Any] | None, restaurant_id: int) -> Published | None:
    """The current published body in a row of `READ_PUBLISHED`; None for no row (an
    unknown restaurant) too: Flask answers the request."""
    try:
        return current_published(row, restaurant_id, time.time())
    except NotFoundError:
        return None


class PublishedReads(Protocol):
    """Reads of current published menu bodies for the warm path's misses."""

    async def read(self, restaurant_id: int, variant: str) -> Published | None:
        """The current published body, or None: Flask answers the request."""

    async def close(self) -> None:
        """Close the connections."""


def published_reads(settings: Settings, admission: Admission) -> PublishedReads:
    """On the event loop over libpq for PostgreSQL; on threads otherwise (SQLite)."""
    if make_url(settings.database_url).get_backend_name() == "postgresql":
        return loop_published_reads(settings, admission, settings.database_url)
    return ThreadPublishedReads(settings, admission)


def loop_published_reads(settings: Settings, admission: Admission, url: str) -> LoopPublishedReads:
    """Reads of `url`'s published menus on the event loop: in batches behind a
    transaction-mode pooler, else one at a time over a prepared statement."""
    if settings.database_pooler == TRANSACTION_POOLER:
        return BatchedPublishedReads(settings, admission, url)
    return LoopPublishedReads(settings, admission, url)


class ThreadPublishedReads:
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

    async def close(self) -> None:
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
        except self.engine.dialect.loaded_dbapi.Error:
            self._drop()
            return None
        return _current(row, restaurant_id)

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


# The prepared statement of `READ_PUBLISHED` on each of the event loop's connections.
STATEMENT = b"presto_read_published"


def _integer(value: bytes) -> int:
    return int.from_bytes(value, "big", signed=True)


# Decoders of binary result values, by the type OIDs `READ_PUBLISHED` returns.
_DECODERS: dict[int, Callable[[bytes], object]] = {
    17: bytes,  # bytea
    20: _integer,  # int8
    21: _integer,  # int2
    23: _integer,  # int4
    25: bytes.decode,  # text
    1043: bytes.decode,  # varchar
}


class ReadFailed(Exception):
    """The database answered the read with an error or an unexpected result."""


class LoopPublishedReads:
    """Reads of published menu bodies on the event loop, over libpq's asynchronous API.

    A read on a thread cost about 170 us of driver CPU plus a thread hand-off each way,
    under the GIL the event loop needs; this costs about 55 us. Each of up to `threads`
    connections (autocommit, the statement prepared once) runs one read at a time: the
    query goes out with `send_query_prepared` and the event loop wakes the read when the
    socket has the answer, as psycopg's asynchronous connections do, without their
    per-query machinery (`AsyncConnection.pgconn` is psycopg's documented way down to
    libpq). Reads beyond `threads` wait for a connection. A read that fails, or outlasts
    `statement_timeout` by a second, closes its connection and answers None (and counts
    it in `failures`).

    Behind a transaction-mode pooler reads go out in batches (`BatchedPublishedReads`).
    """

    # The statement a read runs, and whether it is prepared once on each connection.
    statement: sa.Select[Any] = READ_PUBLISHED  # type: ignore[assignment]
    prepared = True

    def __init__(self, settings: Settings, admission: Admission, url: str) -> None:
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(False)
        pooled = settings.database_pooler == TRANSACTION_POOLER
        self.timeouts = session_timeouts(
            settings.db_connect_timeout, settings.statement_timeout, transaction_pooler=pooled
        )
        self.read_timeout = settings.statement_timeout + 1 if settings.statement_timeout else None
        self.admission = admission
        self.size = settings.threads
        compiled = self.statement.compile(dialect=psycopg_dialect(paramstyle="numeric_dollar"))
        self._sql = compiled.string.encode()
        prepare = f"PREPARE {STATEMENT.decode()} AS {compiled.string}"
        self._prepare = prepare if self.prepared else None
        self._order = list(compiled.positiontup or ())
        # Reads that failed (an error, a lost connection, a timeout), for the replica's health.
        self.failures = 0
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._open = 0

    async def read(self, restaurant_id: int, variant: str) -> Published | None:
        """The current published body, or None: Flask answers the request."""
        return await self.admission.read(lambda: self.fetch(restaurant_id, variant))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def fetch(self, restaurant_id: int, variant: str) -> Published | None:
        """`read` without admission (the caller was admitted)."""
        values = {"restaurant_id": str(restaurant_id).encode(), "variant": variant.encode()}
        connection = None
        healthy = False
        try:
            async with asyncio.timeout(self.read_timeout):
                connection = await self._acquire()
                row = await self._query(connection.pgconn, [values[n] for n in self._order])
            healthy = True
        except (ReadFailed, psycopg.Error, OSError, TimeoutError):
            self.failures += 1
            return None
        finally:
            if connection is not None:
                self._release(connection, healthy)
        return _current(row, restaurant_id)

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        while not self._idle and self._open >= self.size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
        if self._idle:
            return self._idle.pop()
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, **self.timeouts
        )
        try:
            if self._prepare is not None:
                await connection.execute(self._prepare.encode())
        except BaseException:
            await connection.close()
            raise
        connection.pgconn.nonblocking = 1
        return connection

    def _release(self, connection: psycopg.AsyncConnection[Any], healthy: bool) -> None:
        """Back to the idle connections; one that failed (or was cut off mid-read) is
        closed, as its state is unknown."""
        if healthy:
            self._idle.append(connection)
        else:
            self._open -= 1
            connection.pgconn.finish()
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _query(self, pgconn: pq.abc.PGconn, params: list[bytes]) -> list[object] | None:
        """One row of the statement run with `params` (None: no row)."""
        result = await self._result(pgconn, params)
        if result.ntuples == 0:
            return None
        return [_decoded(result, 0, column) for column in range(result.nfields)]

    async def _result(self, pgconn: pq.abc.PGconn, params: list[bytes]) -> pq.abc.PGresult:
        """The rows of the statement run with `params`."""
        if self._prepare is None:
            pgconn.send_query_params(self._sql, list(params), result_format=pq.Format.BINARY)
        else:
            pgconn.send_query_prepared(STATEMENT, params, result_format=pq.Format.BINARY)
        while pgconn.flush():
            await _ready(pgconn.socket, write=True)
        pgconn.consume_input()
        while pgconn.is_busy():
            await _ready(pgconn.socket)
            pgconn.consume_input()
        result = pgconn.get_result()
        while pgconn.get_result() is not None:
            pass
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            raise ReadFailed(pgconn.get_error_message())
        return result


# Reads one call of the batched statement answers at most.
MAX_BATCH = 32
# Connections of a worker's batched reads: few, so that the reads waiting for one go out
# together; the server's concurrency is the pooler's to share out.
BATCH_CONNECTIONS = 2


class Wanted(NamedTuple):
    """A read waiting for its batch: what it asks, where its row goes, and the loop time
    by which it gives up (None: never)."""

    restaurant_id: int
    variant: str
    answer: asyncio.Future[list[object] | None]
    deadline: float | None


class BatchedPublishedReads(LoopPublishedReads):
    """`LoopPublishedReads` for a transaction-mode pooler (`--database-pooler transaction`):
    there a prepared statement would stay on one server connection while the next read may
    get another, and every statement is a transaction the pooler hands a server connection
    and takes back. So reads queue, and each of up to `BATCH_CONNECTIONS` connections sends
    everything queued (up to `MAX_BATCH`) as one unnamed call of the `presto_read_published`
    function, whose query keeps its plan on every server connection, and again while reads
    wait: one read alone goes out at once, and under load the pooler's and the server's
    work per statement is shared by the batch. No startup `options` either (the pooler
    refuses them), so the server's `statement_timeout` does not apply: the read's own bound
    (`statement_timeout` + 1 s from when it asked) does; a batch gives up at its oldest
    read's, and its connection is closed.
    """

    statement = READ_PUBLISHED_MANY
    prepared = False

    def __init__(self, settings: Settings, admission: Admission, url: str) -> None:
        super().__init__(settings, admission, url)
        self.size = min(self.size, BATCH_CONNECTIONS)
        # Statements sent, for the tests and the bench.
        self.batches = 0
        self._queued: list[Wanted] = []
        # Senders running (counted until they stop looking at the queue) and their tasks.
        self._sending = 0
        self._senders: set[asyncio.Task[None]] = set()

    async def fetch(self, restaurant_id: int, variant: str) -> Published | None:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[object] | None] = loop.create_future()
        deadline = None if self.read_timeout is None else loop.time() + self.read_timeout
        self._queued.append(Wanted(restaurant_id, variant, answer, deadline))
        if self._sending < self.size:
            self._sending += 1
            sender = asyncio.create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        try:
            row = await answer  # always answered by its sender, by its deadline
        except ReadFailed:
            return None
        return _current(row, restaurant_id)

    async def _send(self) -> None:
        """Send what is queued, batch after batch, until nothing is."""
        try:
            while self._queued:
                batch = [read for read in self._queued[:MAX_BATCH] if not read.answer.done()]
                del self._queued[:MAX_BATCH]
                if batch:
                    await self._send_batch(batch)
        finally:
            self._sending -= 1

    async def _send_batch(self, batch: list[Wanted]) -> None:
        """One call for `batch`; each read answered with its row, None (no row) or
        `ReadFailed`, whatever happens."""
        rows: dict[int, list[object]] = {}
        connection = None
        healthy = False
        deadline = batch[0].deadline  # the oldest read's
        try:
            async with asyncio.timeout_at(deadline):
                connection = await self._acquire()
                self.batches += 1
                wanted = [(read.restaurant_id, read.variant) for read in batch]
                result = await self._result(connection.pgconn, _batch_params(wanted))
            for row in range(result.ntuples):
                nth, *values = [_decoded(result, row, c) for c in range(result.nfields)]
                rows[cast(int, nth)] = values
            healthy = True
        except (ReadFailed, psycopg.Error, OSError, TimeoutError):
            self.failures += len(batch)
        finally:
            if connection is not None:
                self._release(connection, healthy)
            for nth, read in enumerate(batch, 1):
                if read.answer.done():
                    continue
                if healthy:
                    read.answer.set_result(rows.get(nth))
                else:
                    read.answer.set_exception(ReadFailed())


def _batch_params(wanted: Sequence[tuple[int, str]]) -> list[bytes]:
    """The restaurant ids and variants `wanted` as PostgreSQL array literals."""
    ids = ",".join(str(restaurant_id) for restaurant_id, _ in wanted)
    variants = ",".join(_quoted(variant) for _, variant in wanted)
    return [f"{{{ids}}}".encode(), f"{{{variants}}}".encode()]


def _quoted(text: str) -> str:
    """`text` as an element of an array literal: quoted, `\\` and `"` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _decoded(result: pq.abc.PGresult, row: int, column: int) -> object:
    value = result.get_value(row, column)
    if value is None:
        return None
    decoder = _DECODERS.get(result.ftype(column))
    if decoder is None:
        raise ReadFailed(f"unexpected type {result.ftype(column)} in column {column}")
    return decoder(bytes(value))


async def _ready(fd: int, *, write: bool = False) -> None:
    """Wait until the socket `fd` can be read (or written)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    if write:
        loop.add_writer(fd, _set_done, ready)
    else:
        loop.add_reader(fd, _set_done, ready)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
