"""The warm path's own reads of published menus (`presto.serving.published_reads`): on the
event loop over libpq on PostgreSQL, on threads on SQLite; what they answer, how many
connections they hold, and what they do when the database goes away or hangs."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from presto.config import Settings
from presto.serving.published_reads import (
    BATCH_CONNECTIONS,
    MAX_BATCH,
    BatchedPublishedReads,
    LoopPublishedReads,
    PublishedReads,
    ThreadPublishedReads,
    _batch_params,
    published_reads,
)
from presto.storage.compression import decompress
from presto.storage.published_menus import (
    READ_PUBLISHED,
    READ_PUBLISHED_FUNCTION,
    READ_PUBLISHED_MANY,
)
from tests.helpers.fast_path import open_admission
from tests.helpers.tcp_proxy import TcpProxy

T = TypeVar("T")


def with_reads(settings: Settings, use: Callable[[PublishedReads], Awaitable[T]]) -> T:
    async def run() -> T:
        reads = published_reads(settings, open_admission(2))
        try:
            return await use(reads)
        finally:
            await reads.close()

    return asyncio.run(run())


@pytest.fixture
def published(client: FlaskClient, demo: None) -> bytes:
    """The demo menu, published by a read through Flask; its plain body."""
    answer = client.get("/restaurant/1/item")
    assert answer.status_code == 200
    return answer.get_data()


def test_postgresql_reads_run_on_the_event_loop(db_url: str) -> None:
    reads = published_reads(Settings(database_url=db_url), open_admission(2))
    expected = LoopPublishedReads if db_url.startswith("postgresql") else ThreadPublishedReads
    assert type(reads) is expected
    asyncio.run(reads.close())


def test_many_reads_share_a_few_connections(db_url: str, published: bytes) -> None:
    async def use(reads: PublishedReads) -> list[object]:
        answers = await asyncio.gather(*(reads.read(1, "") for _ in range(24)))
        if isinstance(reads, LoopPublishedReads):
            assert reads._open <= 2  # one read at a time on each of `threads` connections
        return list(answers)

    answers = with_reads(Settings(database_url=db_url, threads=2), use)
    assert len(answers) == 24
    for answer in answers:
        assert answer is not None
        assert decompress(answer.body_gzip) == published  # type: ignore[attr-defined]


def test_what_is_not_current_is_left_to_flask(
    db_url: str, engine: Engine, published: bytes
) -> None:
    with engine.begin() as connection:  # a change by plain SQL, as documented
        connection.execute(sa.text("UPDATE restaurant SET menu_version = menu_version + 1"))

    async def use(reads: PublishedReads) -> tuple[object, object, object]:
        return await reads.read(1, ""), await reads.read(999, ""), await reads.read(1, "all")

    assert with_reads(Settings(database_url=db_url), use) == (None, None, None)


def test_behind_a_transaction_pooler_reads_call_the_function_and_answer_the_same(
    db_url: str, engine: Engine, published: bytes
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the pooler mode and its function are PostgreSQL's")
    pooled = Settings(database_url=db_url, database_pooler="transaction", threads=1)

    async def use(reads: PublishedReads) -> list[object]:
        assert isinstance(reads, BatchedPublishedReads)
        assert READ_PUBLISHED_FUNCTION.encode() in reads._sql
        return [await reads.read(1, ""), await reads.read(999, ""), await reads.read(1, "all")]

    current, missing, unpublished = with_reads(pooled, use)
    assert current is not None
    assert decompress(current.body_gzip) == published  # type: ignore[attr-defined]
    assert (missing, unpublished) == (None, None)
    # Row for row what the statement reads, for a published, an unpublished and no menu,
    # numbered in the order asked, with variants an array literal must quote.
    wanted = [(1, ""), (1, "all"), (999, ""), (1, 'a "b" \\c,{d}'), (1, "")]
    with engine.connect() as connection:
        expected = []
        for nth, (restaurant_id, variant) in enumerate(wanted, 1):
            values = {"restaurant_id": restaurant_id, "variant": variant}
            direct = connection.execute(READ_PUBLISHED, values).all()
            assert len(direct) == (0 if restaurant_id == 999 else 1)
            expected += [(nth, *row) for row in direct]
        ids, variants = zip(*wanted, strict=True)
        values = {"restaurant_ids": list(ids), "variants": list(variants)}
        called = connection.execute(READ_PUBLISHED_MANY, values).all()
        assert [tuple(row) for row in called] == expected
        # The reader's own array literals ask for the same.
        ids_text, variants_text = (value.decode() for value in _batch_params(wanted))
        call = sa.text(
            "SELECT * FROM presto_read_published(CAST(:ids AS integer[]), "
            "CAST(:variants AS varchar[]))"
        )
        quoted = connection.execute(call, {"ids": ids_text, "variants": variants_text})
        assert [tuple(row) for row in quoted.all()] == expected


def test_reads_waiting_behind_a_pooler_go_out_together(db_url: str, published: bytes) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the pooler mode and its function are PostgreSQL's")
    pooled = Settings(database_url=db_url, database_pooler="transaction")

    async def use(reads: PublishedReads) -> tuple[list[object], int, int]:
        assert isinstance(reads, BatchedPublishedReads)
        alone = await reads.read(1, "")
        assert alone is not None and reads.batches == 1  # one read alone: sent at once
        answers = await asyncio.gather(
            *(reads.read(restaurant_id, "") for restaurant_id in [1, 999] * 40)
        )
        return list(answers), reads.batches - 1, reads._open

    answers, batches, opened = with_reads(pooled, use)
    # 80 reads at once on BATCH_CONNECTIONS connections, in batches of MAX_BATCH at most
    # (3 when all are queued before the first goes out), each answered with its own row.
    assert opened == BATCH_CONNECTIONS
    assert math.ceil(80 / MAX_BATCH) <= batches <= math.ceil(80 / MAX_BATCH) + BATCH_CONNECTIONS
    for restaurant_id, answer in zip([1, 999] * 40, answers, strict=True):
        if restaurant_id == 999:
            assert answer is None
        else:
            assert answer is not None
            assert decompress(answer.body_gzip) == published  # type: ignore[attr-defined]


@pytest.fixture
def proxy(db_url: str) -> TcpProxy:
    if not db_url.startswith("postgresql"):
        pytest.skip("a cut or hanging connection needs a database server")
    url = sa.make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    return proxy


def through(proxy: TcpProxy, db_url: str, pooler: str, **settings: float) -> Settings:
    url = sa.make_url(db_url).set(host="127.0.0.1", port=proxy.port)
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        threads=1,
        database_pooler=pooler,
        **settings,  # type: ignore[arg-type]
    )


# One read at a time over a prepared statement, and in batches (as behind a pooler).
POOLERS = pytest.mark.parametrize("pooler", ["none", "transaction"])


@POOLERS
def test_a_cut_connection_answers_none_then_reconnects(
    db_url: str, published: bytes, proxy: TcpProxy, pooler: str
) -> None:
    async def use(reads: PublishedReads) -> list[bool]:
        answers = [await reads.read(1, "") is not None]
        proxy.stop()
        answers.append(await reads.read(1, "") is not None)
        proxy.start()
        answers.append(await reads.read(1, "") is not None)
        return answers

    try:
        assert with_reads(through(proxy, db_url, pooler), use) == [True, False, True]
    finally:
        proxy.stop()


@POOLERS
def test_a_hanging_database_gives_up_after_the_statement_timeout(
    db_url: str, published: bytes, proxy: TcpProxy, pooler: str
) -> None:
    async def use(reads: PublishedReads) -> tuple[bool, float, int]:
        assert await reads.read(1, "") is not None
        proxy.hang = True
        started = time.monotonic()
        answer = await reads.read(1, "")
        assert isinstance(reads, LoopPublishedReads)
        return answer is None, time.monotonic() - started, reads._open

    try:
        gave_up, seconds, still_open = with_reads(
            through(proxy, db_url, pooler, statement_timeout=0.5), use
        )
    finally:
        proxy.stop()
    assert gave_up
    assert 1.3 < seconds < 5  # statement_timeout plus a second
    assert still_open == 0  # the stuck connection was closed, not reused
