"""The worker's side of `/metrics`: what each request adds, the flush timer, the response.

The metric families and their batching live in `presto.serving.telemetry.instruments`;
here each request is labelled with its route template (`presto.serving.telemetry.routes`)
and counted, and `GET /metrics` is answered on the event loop with every worker's values
added up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from aiohttp import web
from sqlalchemy.pool import QueuePool
from werkzeug.routing import Map

from presto.serving.cache import MenuCache
from presto.serving.telemetry import instruments
from presto.serving.telemetry.counters import ProtectionCounters
from presto.serving.telemetry.routes import RouteTemplates
from presto.storage.availability import DatabaseAvailability

METRICS_PATH = "/metrics"
# Where the workers' value files go: memory-backed where Linux offers it.
SHARED_MEMORY = Path("/dev/shm")


@contextlib.contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh directory for this server's metric files, removed when it stops.

    Fresh, so counters start at zero with the server, as Prometheus expects of a restart.
    """
    parent = SHARED_MEMORY if SHARED_MEMORY.is_dir() else None
    directory = tempfile.mkdtemp(prefix="presto-metrics-", dir=parent)
    instruments.enable_multiprocess(directory)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(instruments.MULTIPROC_DIR_VARIABLE, None)


def route_templates(url_map: Map) -> RouteTemplates:
    """The labels of Flask's routes, and of `/metrics`, answered outside Flask (a path no
    route answers is labelled `unmatched`: 404s only)."""
    return RouteTemplates(url_map, {METRICS_PATH: METRICS_PATH})


class Telemetry:
    """Counts one worker's requests and answers `/metrics`."""

    def __init__(self, routes: RouteTemplates, in_flight: Callable[[], int]) -> None:
        self.metrics = instruments.RequestMetrics()
        self.routes = routes
        self._in_flight = in_flight

    def watch(self, cache: MenuCache | None, pool: object) -> None:
        """Report the menu cache's and the database pool's state too."""
        if cache is not None:
            self.metrics.watch_cache(
                lambda: (cache.hits, cache.misses, cache.evictions, cache.bytes)
            )
        if isinstance(pool, QueuePool):
            self.metrics.watch_pool(pool)

    def watch_protections(
        self, counters: ProtectionCounters, availability: DatabaseAvailability
    ) -> None:
        """Report what the protections counted and the database breaker's state too."""
        self.metrics.watch_protections(
            lambda: dataclasses.asdict(counters),
            lambda: (availability.available, availability.openings),
        )

    def request_done(self, request: web.BaseRequest, status: int, seconds: float) -> None:
        """Count one answered request under its route template."""
        method = request.method
        route = self.routes.template(method, request.path)
        self.metrics.request_done(route, method, status, seconds)

    def flush(self) -> None:
        """Hand this worker's counts to the shared files."""
        self.metrics.in_flight = self._in_flight()
        self.metrics.flush()

    async def flush_every(self, seconds: float) -> None:
        """Flush until cancelled."""
        while True:
            await asyncio.sleep(seconds)
            self.flush()

    def respond(self) -> web.Response:
        """`GET /metrics`: every worker's metrics in the Prometheus text format."""
        self.flush()
        response = web.Response(body=instruments.exposition())
        response.headers["Content-Type"] = instruments.CONTENT_TYPE
        response.headers["Cache-Control"] = "no-store"
        return response
