"""The HTTP server: the Flask app mounted with aiohttp-wsgi in aiohttp's low-level server.

One worker process runs one uvloop event loop. aiohttp parses HTTP; `WSGIHandler` buffers
the body (up to a cap) and runs Flask in a thread pool. With `--workers N` a supervisor
starts N such processes sharing the port through `SO_REUSEPORT`; each creates its own
database engine, so no pooled connection crosses a process boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import math
import multiprocessing
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_processes
from multiprocessing.process import BaseProcess
from typing import cast

import uvloop
from aiohttp import web
from aiohttp_wsgi.wsgi import WSGIApplication
from flask import Flask
from sqlalchemy.engine import Engine

from presto.api.health_routes import FAILING_PROCESSES
from presto.api.session import Database, app_database
from presto.app import create_app
from presto.config import Settings
from presto.errors import PROBLEM_JSON, problem_document
from presto.metrics import FLUSH_SECONDS, mark_process_dead
from presto.serving.accesslog import BUFFER as access_log_buffer
from presto.serving.accesslog import (
    LOG_FORMAT,
    AccessLogger,
    JsonFormatter,
    access_log,
    configure_access_log,
)
from presto.serving.admission import Admission
from presto.serving.bodies import BodyReader
from presto.serving.cache import MenuCache
from presto.serving.clients import trusted_networks
from presto.serving.connections import ConnectionLimits, GuardedServer, raise_file_limit
from presto.serving.cors import CorsPolicy
from presto.serving.counters import ProtectionCounters
from presto.serving.fastpath import Handler, MenuFastPath, without_validity_header
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.serving.metrics import METRICS_PATH, Telemetry, metrics_directory
from presto.serving.prepared import PreparedResponse
from presto.serving.published_reads import PublishedReads, published_reads
from presto.serving.publisher import PublisherLink, PublisherProcess, sender
from presto.serving.ratelimit import RateLimit
from presto.serving.request import WSGIRequest, wsgi_request_factory
from presto.serving.routes import RouteTemplates
from presto.serving.webhook_relay import WebhookRelay
from presto.serving.wsgi_environ import Pep3333WSGIHandler
from presto.storage.availability import DatabaseAvailability

log = logging.getLogger("presto.server")

# A client's X-Request-ID is echoed back only if it looks like an id, not arbitrary text.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Liveness is answered on the event loop, so that a database outage holding every WSGI
# thread does not make a live worker look dead (the Flask route documents it, and answers
# under other WSGI servers).
LIVENESS_PATH = "/healthz"
LIVENESS_BODY = b'{"status":"alive"}'
LOOP_PATHS = frozenset({LIVENESS_PATH, METRICS_PATH})
# Allocations between collections of the youngest generation (Python's default is 700).
GC_THRESHOLD = 20_000
# A worker that dies sooner than this after starting is not restarted.
WORKER_MIN_LIFETIME = 5.0


def problem_response(request: web.BaseRequest, status: int, detail: str) -> web.Response:
    """An RFC 9457 problem made in the async layer, for errors before Flask runs."""
    body = problem_document(status, detail, request.path)
    return web.Response(body=body, status=status, content_type=PROBLEM_JSON)


class InFlight:
    """Counts requests being handled, so that shutdown can wait for them.

    aiohttp's own `Server.shutdown` stops reading from connections at once, which would
    cut off a request whose body is still arriving; presto waits for its requests first.
    """

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle: asyncio.Event | None = None

    def started(self) -> None:
        self.count += 1

    def finished(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for no request in flight; True if none is."""
        self.draining = True
        if self.count == 0:
            return True
        self._idle = asyncio.Event()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class RequestIds:
    """The client's `X-Request-ID` if it looks like one, else a new id: unique across
    processes and restarts, cheaper to make than a uuid4."""

    def __init__(self) -> None:
        self.prefix = os.urandom(4).hex() + "-"
        self.numbers = itertools.count(1)

    def of(self, headers: Mapping[str, str]) -> str:
        request_id = headers.get("X-Request-ID")
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = f"{self.prefix}{next(self.numbers):x}"
        return request_id


def tag_response(response: web.StreamResponse, request_id: str) -> None:
    """Echo the request id (a cache hit writes it as a line of its own, no dictionary)."""
    if isinstance(response, PreparedResponse):
        response.request_id = request_id
    else:
        response.headers["X-Request-ID"] = request_id


def make_handler(
    admit: Handler,
    in_flight: InFlight,
    fast_path: MenuFastPath | None,
    telemetry: Telemetry,
    cors: CorsPolicy,
) -> Callable[[WSGIRequest], Awaitable[web.StreamResponse]]:
    """The request handler: tag the request with an id, answer CORS preflights and
    `/metrics`, cached menu calls from the fast path, everything else through `admit`
    (admission, then the WSGI app); count each request for `/metrics`."""

    request_ids = RequestIds()

    async def handle(request: WSGIRequest) -> web.StreamResponse:
        started = time.perf_counter()
        headers = request.headers
        request.request_id = request_id = request_ids.of(headers)
        request.started = started
        origin = headers.get("Origin")
        in_flight.started()
        try:
            if origin is not None and cors.is_preflight(request):
                response: web.StreamResponse = cors.preflight(request, origin)
            elif request.path in LOOP_PATHS:
                response = answer_on_loop(request, telemetry)
            elif fast_path is None:
                response = without_validity_header(await admit(request))
            else:
                hit = fast_path.hit(request)
                response = hit if hit is not None else await fast_path.load(request, admit)
        except Exception:
            log.exception("unhandled error, request id %s", request_id)
            response = problem_response(request, 500, "The server failed to answer this request.")
        finally:
            in_flight.finished()
        tag_response(response, request_id)
        if origin is not None:
            cors.decorate(request, response, origin)
        if in_flight.draining:
            response.force_close()
        telemetry.request_done(request, response.status, time.perf_counter() - started)
        return response

    return handle


def answer_on_loop(request: web.BaseRequest, telemetry: Telemetry) -> web.Response:
    """`/healthz` and `/metrics` for `GET` and `HEAD`, answered without a thread; 405 for
    other methods."""
    if request.method not in ("GET", "HEAD"):
        response = problem_response(request, 405, "The method is not allowed for this URL.")
        response.headers["Allow"] = "GET, HEAD"
        return response
    if request.path == LIVENESS_PATH:
        return web.Response(body=LIVENESS_BODY, content_type="application/json")
    return telemetry.respond()


@dataclass
class Worker:
    """Everything one worker process serves with, made before it listens."""

    settings: Settings
    database: Database
    generations: MenuGenerations
    listener: MenuChangeListener | None
    executor: ThreadPoolExecutor
    in_flight: InFlight
    server: web.Server
    telemetry: Telemetry
    # The listener's task, once the worker listens.
    listening: asyncio.Task[None] | None = None
    # The task handing metrics to the shared files, once the worker listens.
    flushing: asyncio.Task[None] | None = None
    # The database circuit breaker, and what the protections counted (for metrics).
    availability: DatabaseAvailability | None = None
    counters: ProtectionCounters | None = None
    # The warm path's reads of published menus on a miss.
    published_reads: PublishedReads | None = None
    # The webhook relay, and its task once the worker listens.
    relay: WebhookRelay | None = None
    relaying: asyncio.Task[None] | None = None


def build_worker(
    settings: Settings, generations_path: str | None, publisher: PublisherLink | None = None
) -> Worker:
    """The Flask app, its database, the warm path, the webhook relay and the low-level
    server of one worker. `generations_path` names the menu generation counters shared
    with the other workers of this host; without it they are private to this process.
    `publisher` is the link to the publisher process (`--publish-on-write background`)."""
    generations = MenuGenerations(generations_path)
    relay = WebhookRelay(settings)
    app = worker_app(settings, generations, publisher, relay.wake)
    database = app_database(app)
    counters = ProtectionCounters()
    availability = DatabaseAvailability(database.engine)
    in_flight = InFlight()
    telemetry = Telemetry(RouteTemplates(app.url_map), lambda: in_flight.count)
    fast_path, listener = make_fast_path(
        settings, database, generations, availability, counters, telemetry, relay.wake
    )
    telemetry.watch(fast_path.cache if fast_path else None, database.engine.pool)
    telemetry.watch_protections(counters, availability)
    executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="presto-wsgi")
    wsgi = Pep3333WSGIHandler(
        cast(WSGIApplication, app),
        executor=executor,
        max_request_body_size=settings.max_body_bytes,
    )
    read_body = BodyReader(settings.max_body_bytes, settings.body_timeout, counters)
    admission = make_admission(settings, availability, counters)
    published_reads = attach_published_reads(settings, fast_path, admission)
    server = GuardedServer(
        make_handler(
            admission.wrap(read_body, wsgi.respond),
            in_flight,
            fast_path,
            telemetry,
            CorsPolicy(settings.cors_origins),
        ),
        limits=ConnectionLimits(settings.header_timeout, settings.max_connections),
        counters=counters,
        request_factory=wsgi_request_factory(asyncio.get_running_loop()),
        access_log_class=AccessLogger,
        access_log=access_log,
        keepalive_timeout=settings.idle_timeout,
    )
    return Worker(
        settings, database, generations, listener, executor, in_flight, server, telemetry,
        availability=availability, counters=counters, published_reads=published_reads,
        relay=relay,
    )  # fmt: skip


def worker_app(
    settings: Settings,
    generations: MenuGenerations,
    publisher: PublisherLink | None,
    wake_relay: Callable[[int], None] | None = None,
) -> Flask:
    """The worker's Flask app, its writes handed to the publisher process if there is one,
    whose health `/readyz` then reports; each committed change wakes the webhook relay."""

    def changed(restaurant_id: int) -> None:
        generations.bump(restaurant_id)
        if wake_relay is not None:
            wake_relay(restaurant_id)

    if publisher is None:
        return create_app(settings, on_menu_change=changed)
    app = create_app(settings, on_menu_change=changed, publish=sender(publisher.changes))
    app.config[FAILING_PROCESSES] = publisher.states.failing
    return app


def attach_published_reads(
    settings: Settings, fast_path: MenuFastPath | None, admission: Admission
) -> PublishedReads | None:
    """Let the warm path read published menus on a miss (nothing to do without a cache)."""
    if fast_path is None:
        return None
    reads = published_reads(settings, admission)
    fast_path.reader = reads.read
    return reads


def make_fast_path(
    settings: Settings,
    database: Database,
    generations: MenuGenerations,
    availability: DatabaseAvailability,
    counters: ProtectionCounters,
    telemetry: Telemetry,
    on_change: Callable[[int], None] | None = None,
) -> tuple[MenuFastPath | None, MenuChangeListener | None]:
    """The warm path, and on PostgreSQL the listener it depends on; none without a cache."""
    if settings.cache_bytes <= 0:
        return None, None
    listener = None
    if database.engine.dialect.name == "postgresql":
        # Hears of changes made on other hosts; one more connection per worker.
        conninfo = libpq_conninfo(database.engine, settings.db_connect_timeout)
        listener = MenuChangeListener(conninfo, generations, on_change=on_change)
    fast_path = MenuFastPath(
        MenuCache(settings.cache_bytes),
        generations,
        listener,
        on_load=telemetry.metrics.menu_loaded,
        availability=availability,
        counters=counters,
    )
    return fast_path, listener


def make_admission(
    settings: Settings, availability: DatabaseAvailability, counters: ProtectionCounters
) -> Admission:
    """Rate limits, the breaker and load shedding as `settings` configure them."""
    writes = auth_failures = previews = None
    if settings.preview_rate_limit:
        previews = RateLimit("previews", settings.preview_rate_limit, settings.preview_rate_window)
    if settings.write_rate_limit:
        writes = RateLimit("writes", settings.write_rate_limit, settings.write_rate_window)
    if settings.auth_failure_limit:
        auth_failures = RateLimit(
            "auth-failures", settings.auth_failure_limit, settings.auth_failure_window
        )
    return Admission(
        threads=settings.threads,
        max_queue=settings.max_queue,
        write_limit=writes,
        auth_failure_limit=auth_failures,
        availability=availability,
        counters=counters,
        trusted_proxies=trusted_networks(settings.trusted_proxies),
        preview_limit=previews,
    )


async def bind(worker: Worker) -> asyncio.Server:
    """Listen on the configured address; a port in use is one log line and exit status 1."""
    settings = worker.settings
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(
            worker.server,
            settings.host,
            settings.port,
            reuse_port=settings.workers > 1,
            backlog=1024,
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        worker.database.engine.dispose()
        raise SystemExit(1) from None


def freeze_startup_objects() -> None:
    """Keep everything made so far (modules, app, engine), which lives as long as the
    process, out of the garbage collector's scans, which every request's garbage triggers.

    A cold menu load makes tens of thousands of objects; collecting every 700 of them
    (the default) costs it 15-20%.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def drain_and_close(worker: Worker, tcp_server: asyncio.Server) -> None:
    """Stop listening, let in-flight requests finish, then close down in order."""
    tcp_server.close()
    if await worker.in_flight.drain(worker.settings.shutdown_timeout):
        log.info("in-flight requests done")
    else:
        log.warning("%d request(s) still in flight; cancelling them", worker.in_flight.count)
    # Closes idle keep-alive connections and cancels whatever is left.
    await worker.server.shutdown(1.0)
    for task in (worker.listening, worker.flushing, worker.relaying):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if worker.relay is not None:
        await worker.relay.close()
    worker.executor.shutdown(wait=True)
    if worker.published_reads is not None:
        await worker.published_reads.close()
    if worker.availability is not None:
        worker.availability.close()
    worker.database.engine.dispose()
    worker.generations.close()
    worker.telemetry.flush()
    log.info("stopped")
    access_log_buffer.flush()


async def serve(
    settings: Settings,
    generations_path: str | None = None,
    publisher: PublisherLink | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then drain in-flight requests and close down."""
    loop = asyncio.get_running_loop()
    raise_file_limit(settings.max_connections)
    worker = build_worker(settings, generations_path, publisher)
    tcp_server = await bind(worker)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if worker.listener is not None:
        worker.listening = asyncio.create_task(worker.listener.run())
    worker.flushing = asyncio.create_task(worker.telemetry.flush_every(FLUSH_SECONDS))
    if worker.relay is not None:
        worker.relaying = asyncio.create_task(worker.relay.run())
    freeze_startup_objects()
    host, port = tcp_server.sockets[0].getsockname()[:2]
    log.info("presto listening on http://%s:%d (pid %d)", host, port, os.getpid())
    try:
        await stop.wait()
        log.info("stopping: no new connections, draining in-flight requests")
    finally:
        await drain_and_close(worker, tcp_server)


def libpq_conninfo(engine: Engine, connect_timeout: float = 0) -> str:
    """The engine's URL as psycopg takes it (no SQLAlchemy driver suffix)."""
    url = engine.url.set(drivername="postgresql")
    if connect_timeout:
        url = url.update_query_dict({"connect_timeout": str(max(2, math.ceil(connect_timeout)))})
    return url.render_as_string(hide_password=False)


def run_worker(
    settings: Settings,
    generations_path: str | None = None,
    publisher: PublisherLink | None = None,
) -> None:
    """Entry point of one worker process."""
    configure_logging(settings)
    uvloop.run(serve(settings, generations_path, publisher))


def run(settings: Settings) -> int:
    """Run one worker in this process, or supervise `settings.workers` of them, their
    metrics kept in one directory for the length of the run, beside the publisher process
    (`--publish-on-write background`)."""
    with metrics_directory():
        publisher = None
        if settings.publish_on_write == "background":
            publisher = PublisherProcess(settings, configure_logging)
            publisher.start()
        link = None if publisher is None else publisher.link
        try:
            if settings.workers == 1:
                run_worker(settings, publisher=link)
                return 0
            return supervise(settings, link)
        finally:
            if publisher is not None:
                publisher.stop()


def supervise(settings: Settings, publisher: PublisherLink | None = None) -> int:
    """Run `settings.workers` worker processes until SIGINT/SIGTERM; 1 if any failed."""
    generations_path = MenuGenerations.create_file()
    try:
        return Supervisor(settings, generations_path, publisher).run()
    finally:
        os.unlink(generations_path)


class Supervisor:
    """Starts the workers, restarts one that dies, and passes SIGINT/SIGTERM on to them."""

    def __init__(
        self, settings: Settings, generations_path: str, publisher: PublisherLink | None = None
    ) -> None:
        self.settings = settings
        self.generations_path = generations_path
        self.publisher = publisher
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.started: dict[BaseProcess, float] = {}
        self.stopping = False

    def start(self) -> None:
        process = self.context.Process(
            target=run_worker,
            args=(self.settings, self.generations_path, self.publisher),
            name="presto-worker",
        )
        process.start()
        self.workers.append(process)
        self.started[process] = time.monotonic()

    def stop(self, signum: int, _frame: object = None) -> None:
        self.stopping = True
        for process in self.workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    def run(self) -> int:
        for _ in range(self.settings.workers):
            self.start()
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        failed = False
        while self.workers:
            wait_for_processes([process.sentinel for process in self.workers])
            for process in [process for process in self.workers if process.exitcode is not None]:
                self.workers.remove(process)
                process.join()
                if process.pid is not None:
                    mark_process_dead(process.pid)
                lifetime = time.monotonic() - self.started.pop(process)
                if self.stopping:
                    failed = failed or process.exitcode != 0
                elif lifetime < WORKER_MIN_LIFETIME:
                    # Dying at start-up (port taken, database down): restarting would spin.
                    log.error("worker %d failed at start-up; stopping", process.pid)
                    self.stop(signal.SIGTERM)
                    failed = True
                else:
                    log.error("worker %d exited with %s; restarting", process.pid, process.exitcode)
                    self.start()
        return 1 if failed else 0


def configure_logging(settings: Settings) -> None:
    """Log lines with time, level, process id and logger name to standard error, as text
    or as one JSON object per line."""
    handler = logging.StreamHandler()
    json = settings.log_format == "json"
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    configure_access_log(
        settings.log_level,
        json=json,
        trusted_proxies=settings.trusted_proxies,
        log_health_checks=settings.log_health_checks,
    )
