"""A worker measures how far its event loop runs behind, and admission stops handing
threads to reads while it runs far behind (`--shed-loop-lag`), one read at a time aside."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import HttpVersion10, web
from aiohttp.test_utils import make_mocked_request

from presto.config import Settings
from presto.serving.admission import Admission
from presto.serving.looplag import INTERVAL, SUSTAINED, LoopLag
from presto.serving.telemetry.counters import ProtectionCounters

# The default presto ships.
SHED_LOOP_LAG = Settings().shed_loop_lag


def test_the_lag_is_how_late_the_loop_keeps_running_and_falls_back_when_it_catches_up() -> None:
    async def measure() -> tuple[float, float, float, float]:
        lag = LoopLag()
        lag.start()
        await asyncio.sleep(5 * INTERVAL)
        calm = lag.seconds
        time.sleep(0.2)  # one late wake-up: a blip, not a loop that cannot keep up
        await asyncio.sleep(INTERVAL / 2)
        blip = lag.seconds
        for _ in range(SUSTAINED + 1):  # held up again and again, as a flood holds it
            await asyncio.sleep(0)
            time.sleep(0.1)
        await asyncio.sleep(INTERVAL / 2)
        behind = lag.seconds
        await asyncio.sleep((SUSTAINED + 3) * INTERVAL)
        return calm, blip, behind, lag.seconds

    calm, blip, behind, after = asyncio.run(measure())
    assert calm < SHED_LOOP_LAG
    assert blip < SHED_LOOP_LAG
    assert behind > SHED_LOOP_LAG
    assert after < SHED_LOOP_LAG


class Lagging(LoopLag):
    """A loop lag fixed by the test."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.fixed = seconds

    @property
    def seconds(self) -> float:
        return self.fixed


def admission(lag: float, shed_loop_lag: float = SHED_LOOP_LAG) -> Admission:
    return Admission(
        threads=Settings().threads,
        max_queue=Settings().max_queue,
        write_limit=None,
        auth_failure_limit=None,
        availability=None,
        counters=ProtectionCounters(),
        loop_lag=Lagging(lag),
        shed_loop_lag=shed_loop_lag,
    )


def answer(gate: Admission, method: str, *, busy: int) -> tuple[int, dict[str, str], object]:
    """The status, headers and body `gate` answers a `method` request with while `busy`
    other requests hold threads."""
    gate.in_wsgi = busy

    async def read_body(_: web.BaseRequest) -> bytes:
        return b""

    async def run(_: web.BaseRequest, __: bytes) -> web.StreamResponse:
        return web.Response(status=200, text="[]")

    async def call() -> web.StreamResponse:
        # HTTP/1.0: answered as a plain `web.Response` (1.1 gets the same bytes, prepared).
        request = make_mocked_request(method, "/restaurant/1/item", version=HttpVersion10)
        return await gate.call(request, read_body, run)

    response = asyncio.run(call())
    assert isinstance(response, web.Response)
    body = response.body
    assert isinstance(body, bytes)
    return response.status, dict(response.headers), json.loads(body) if body else None


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_read_is_shed_while_the_loop_lags_and_another_holds_a_thread(method: str) -> None:
    gate = admission(lag=SHED_LOOP_LAG * 2)
    status, headers, _ = answer(gate, method, busy=1)
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert gate.counters.shed == 1


def test_the_refusal_is_a_problem_document() -> None:
    status, headers, body = answer(admission(lag=1.0), "GET", busy=2)
    assert (status, headers["Content-Type"]) == (503, "application/problem+json")
    assert body == {
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": "The server is overloaded; try again shortly.",
        "instance": "/restaurant/1/item",
    }


def test_one_read_at_a_time_still_goes_on_so_menus_keep_loading() -> None:
    gate = admission(lag=1.0)
    assert answer(gate, "GET", busy=0)[0] == 200
    assert gate.counters.shed == 0


def test_writes_are_not_shed_for_the_lag() -> None:
    assert answer(admission(lag=1.0), "PATCH", busy=3)[0] == 200


def test_below_the_bound_or_switched_off_nothing_is_shed() -> None:
    assert answer(admission(lag=SHED_LOOP_LAG / 2), "GET", busy=3)[0] == 200
    assert answer(admission(lag=1.0, shed_loop_lag=0), "GET", busy=3)[0] == 200


def test_a_warm_path_read_is_not_started_while_the_loop_lags() -> None:
    """The fast path's read of a published menu takes a slot like a WSGI request."""
    gate = admission(lag=1.0)
    gate.in_wsgi = 1

    async def read() -> str:
        return "menu"

    assert asyncio.run(gate.read(read)) is None
    gate.in_wsgi = 0
    assert asyncio.run(gate.read(read)) == "menu"
