"""The cold path: a large menu served with nothing cached on the host, measured in process.

Requests go through the Flask app's test client, so no server, no network and no cache
in the async layer take part: what is left is reading the published menu (one indexed
query) and, for this client that does not ask for gzip, decompressing it. The reference
encodes the very same JSON from plain dicts with orjson, the least any serializer written
in Python could do. What publishing costs, paid once per change, is timed beside it: the
menu loaded through the ORM and rendered by the schemas.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from presto.api.session import app_database
from presto.app import create_app
from presto.bench.generated_menus import generate_menu
from presto.config import Settings
from presto.menus.publishing import publish_menu
from presto.storage.engine import create_schema, drop_schema, make_engine, make_sessionmaker


@dataclass(frozen=True)
class ColdResult:
    """One menu size: presto's cold menu call against orjson from plain dicts."""

    items: int
    nodes: int
    body_bytes: int
    repeats: int
    # Per request: median and slowest, in milliseconds.
    median_ms: float
    max_ms: float
    statements: int
    reference_median_ms: float
    reference_max_ms: float
    # Rendering and storing the menu (`publish_menu`), once per change: median.
    publish_median_ms: float


def count_nodes(items: Sequence[dict[str, Any]]) -> int:
    """Items in a nested menu body, each occurrence counted."""
    return sum(1 + count_nodes(item["modifiers"]) for item in items)


def time_publishing(factory: sessionmaker[Session], restaurant_id: int, repeats: int) -> float:
    """Median milliseconds of publishing the menu again (what a change costs)."""
    timings = []
    for _ in range(max(1, repeats // 4)):
        with factory() as session, session.begin():
            started = time.perf_counter()
            publish_menu(session, restaurant_id)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure_cold(database_url: str, sizes: Sequence[int], *, repeats: int) -> list[ColdResult]:
    """Load one generated menu per size into a fresh schema and time its menu call."""
    restaurant_ids = _load_menus(database_url, sizes)
    app = create_app(Settings(database_url=database_url, threads=1))
    database = app_database(app)
    client = app.test_client()
    # Statements run by each timed request.
    statements: list[int] = [0]

    def count_statement(*_args: Any) -> None:
        statements[-1] += 1

    sa.event.listen(database.engine, "before_cursor_execute", count_statement)
    try:
        return [
            _measure_menu(client, database.sessionmaker, statements, size, restaurant_id, repeats)
            for size, restaurant_id in zip(sizes, restaurant_ids, strict=True)
        ]
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", count_statement)
        database.engine.dispose()


def _load_menus(database_url: str, sizes: Sequence[int]) -> list[int]:
    """A fresh schema holding one generated menu per size, so nothing is cached yet;
    returns their restaurant ids."""
    engine = make_engine(database_url, pool_size=1)
    try:
        drop_schema(engine)
        create_schema(engine)
        restaurant_ids = []
        with make_sessionmaker(engine)() as session, session.begin():
            for size in sizes:
                restaurant_ids.append(generate_menu(session, items=size))
    finally:
        engine.dispose()
    return restaurant_ids


def _measure_menu(
    client: FlaskClient,
    factory: sessionmaker[Session],
    statements: list[int],
    size: int,
    restaurant_id: int,
    repeats: int,
) -> ColdResult:
    """One menu size: its menu call, orjson encoding the same body, and publishing it."""
    path = f"/restaurant/{restaurant_id}/item"
    body, timings, statement_count = _time_menu_call(client, path, statements, repeats)
    plain = orjson.loads(body)
    reference = _time_reference(plain, body, repeats)
    publish_ms = time_publishing(factory, restaurant_id, repeats)
    return ColdResult(
        items=size,
        nodes=count_nodes(plain),
        body_bytes=len(body),
        repeats=repeats,
        median_ms=statistics.median(timings),
        max_ms=max(timings),
        statements=statement_count,
        reference_median_ms=statistics.median(reference),
        reference_max_ms=max(reference),
        publish_median_ms=publish_ms,
    )


def _time_menu_call(
    client: FlaskClient, path: str, statements: list[int], repeats: int
) -> tuple[bytes, list[float], int]:
    """The body, milliseconds of each of `repeats` calls of `path` after a first untimed
    one, and the statements each ran (the same for all, or the measurement is off)."""
    # The first call opens the connection and fills compiled-statement caches.
    if client.get(path).status_code != 200:
        raise RuntimeError(f"GET {path} failed")
    timings = []
    for _ in range(repeats):
        statements.append(0)
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
    counts = set(statements[-repeats:])
    if len(counts) != 1:
        raise RuntimeError(f"statements per request varied: {sorted(counts)}")
    return response.get_data(), timings, counts.pop()


def _time_reference(plain: Any, body: bytes, repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` encodings of `plain` with orjson, which must give
    back the very bytes of the menu call for the comparison to hold."""
    reference = []
    for _ in range(repeats):
        started = time.perf_counter()
        encoded = orjson.dumps(plain)
        reference.append((time.perf_counter() - started) * 1000)
    if encoded != body:
        raise RuntimeError("orjson from dicts gave other bytes than the menu call")
    return reference
