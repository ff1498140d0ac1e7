"""The warm path as tests drive it: a request handed to `MenuFastPath.handle`, admission
without limits, and a fast path reading the published store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from presto.config import Settings
from presto.serving.admission import Admission
from presto.serving.cache import MenuCache
from presto.serving.fastpath import Handler, MenuFastPath
from presto.serving.generations import MenuGenerations
from presto.serving.published_reads import published_reads
from presto.serving.telemetry.counters import ProtectionCounters
from tests.helpers.responses import as_response


def open_admission(threads: int) -> Admission:
    """Admission of `threads` threads with no queue, rate limit, breaker or loop lag."""
    return Admission(
        threads=threads,
        max_queue=0,
        write_limit=None,
        auth_failure_limit=None,
        availability=None,
        counters=ProtectionCounters(),
    )


def call(fast_path: MenuFastPath, wsgi: Handler, path: str, **headers: str) -> web.Response:
    """`GET path` through `fast_path`, `wsgi` behind it, as a `web.Response`."""

    async def run() -> Any:
        request = make_mocked_request("GET", path, headers=headers)
        return as_response(await fast_path.handle(request, wsgi))

    response: web.Response = asyncio.run(run())
    return response


def published_answers(
    db_url: str, requests: Sequence[tuple[str, dict[str, str]]], wsgi: Handler
) -> list[web.Response]:
    """`GET` each (path, headers) in turn through one fast path that reads published menus
    from `db_url` (`wsgi` behind it)."""

    async def run() -> list[web.Response]:
        reads = published_reads(Settings(database_url=db_url, threads=1), open_admission(1))
        fast_path = MenuFastPath(MenuCache(1_000_000), MenuGenerations(), reader=reads.read)
        try:
            return [
                as_response(
                    await fast_path.handle(make_mocked_request("GET", path, headers=headers), wsgi)
                )
                for path, headers in requests
            ]
        finally:
            await reads.close()

    return asyncio.run(run())
