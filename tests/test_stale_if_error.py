"""The fast path's `stale-if-error` rule: a cached menu stands in for a failed menu call
only while the database circuit breaker is open, never while the database answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from sqlalchemy.engine import Engine

from presto.serving.cache import MenuCache, StaleMenuResponse
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import MenuGenerations
from presto.serving.telemetry.counters import ProtectionCounters
from presto.storage.availability import DatabaseAvailability
from tests.helpers.responses import as_response

MENU = "/restaurant/1/item"
OLD_MENU = b'[{"price": 100}]'


@pytest.fixture
def availability(engine: Engine) -> Iterator[DatabaseAvailability]:
    """The breaker of the test database's engine; it probes only once a minute here."""
    breaker = DatabaseAvailability(engine, probe_interval=60)
    yield breaker
    breaker.close()


@pytest.fixture
def fast_path(availability: DatabaseAvailability) -> MenuFastPath:
    """A fast path holding restaurant 1's menu, which has changed since (a write)."""
    generations = MenuGenerations()
    path = MenuFastPath(
        MenuCache(1 << 20), generations, availability=availability, counters=ProtectionCounters()
    )
    answer(path, 200, OLD_MENU)
    generations.bump(1)
    return path


def answer(
    fast_path: MenuFastPath, status: int, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """The fast path's answer to a menu call whose trip to the WSGI app gives `status`."""

    async def wsgi(_request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(
            status=status, body=body, content_type="application/json", headers={"ETag": '"m1"'}
        )

    async def call() -> web.StreamResponse:
        request = make_mocked_request("GET", MENU, headers=headers or {})
        return as_response(await fast_path.handle(request, wsgi))

    return asyncio.run(call())


def test_while_the_database_answers_an_error_is_not_covered_up(fast_path: MenuFastPath) -> None:
    response = answer(fast_path, 503)

    assert response.status == 503
    assert "Cache-Status" not in response.headers
    assert fast_path.counters.stale_if_error == 0


def test_while_the_database_is_unreachable_the_cached_menu_answers_marked_stale(
    fast_path: MenuFastPath, availability: DatabaseAvailability
) -> None:
    availability.open()

    response = answer(fast_path, 503)

    assert isinstance(response, StaleMenuResponse)
    assert response.status == 200
    assert isinstance(response, web.Response)
    assert response.body == OLD_MENU
    assert response.headers["Cache-Status"] == "presto; hit; detail=stale-if-error"
    assert response.headers["ETag"] == '"m1"'
    assert fast_path.counters.stale_if_error == 1


def test_a_stale_answer_to_a_conditional_request_is_304_marked_stale(
    fast_path: MenuFastPath, availability: DatabaseAvailability
) -> None:
    availability.open()

    response = answer(fast_path, 503, headers={"If-None-Match": '"m1"'})

    assert response.status == 304
    assert response.headers["Cache-Status"] == "presto; hit; detail=stale-if-error"


def test_without_a_cached_menu_the_error_stands(
    fast_path: MenuFastPath, availability: DatabaseAvailability
) -> None:
    availability.open()
    fast_path.cache = MenuCache(1 << 20)

    assert answer(fast_path, 503).status == 503


def test_a_client_error_is_never_replaced(
    fast_path: MenuFastPath, availability: DatabaseAvailability
) -> None:
    availability.open()

    assert answer(fast_path, 404).status == 404
