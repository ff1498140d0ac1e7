"""Worker assembly: everything one worker process serves with, made before it listens.

The Flask app mounted with aiohttp-wsgi in aiohttp's low-level server: aiohttp parses
HTTP; `Pep3333WSGIHandler` buffers the body (up to a cap) and runs Flask in a thread pool.
Each worker creates its own database engine, so no pooled connection crosses a process
boundary. In front of the app: the request handler (`presto.serving.handler`), admission
(rate limits, the breaker, load shedding) and, with a cache, the warm path and its reads
of published menus.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import cast

from aiohttp import web
from aiohttp_wsgi.wsgi import WSGIApplication
from flask import Flask

from presto.api.readiness_keys import FAILING_PROCESSES
from presto.api.session import Database, app_database
from presto.app import create_app
from presto.config import Settings
from presto.serving.accesslog import AccessLogger, access_log
from presto.serving.admission import Admission
from presto.serving.bodies import BodyReader
from presto.serving.cache import MenuCache
from presto.serving.clients import trusted_networks
from presto.serving.connections import ConnectionLimits, GuardedServer
from presto.serving.cors import CorsPolicy
from presto.serving.database_roles import make_listener, make_published_reads, report_roles
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import MenuChangeListener, MenuGenerations
from presto.serving.handler import InFlight, make_handler
from presto.serving.helper_process import HelperLinks, sender
from presto.serving.looplag import LoopLag
from presto.serving.published_reads import PublishedReads
from presto.serving.ratelimit import RateLimit
from presto.serving.request import wsgi_request_factory
from presto.serving.telemetry.counters import ProtectionCounters
from presto.serving.telemetry.metrics import Telemetry, route_templates
from presto.serving.wsgi_environ import Pep3333WSGIHandler
from presto.storage.availability import DatabaseAvailability


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


def build_worker(
    settings: Settings, generations_path: str | None, helpers: HelperLinks | None = None
) -> Worker:
    """The Flask app, its database, the warm path and the low-level server of one worker.

    `generations_path` names the menu generation counters shared with the other workers
    of this host; without it they are private to this process. `helpers` links the worker
    to the helper processes (the publisher, the webhook relay).
    """
    generations = MenuGenerations(generations_path)
    app = worker_app(settings, generations, helpers)
    database = app_database(app)
    counters = ProtectionCounters()
    availability = DatabaseAvailability(database.engine)
    in_flight = InFlight()
    telemetry = Telemetry(route_templates(app.url_map), lambda: in_flight.count)
    admission = make_admission(settings, availability, counters)
    listener = change_listener(settings, database, generations)
    reads = warm_path_reads(settings, admission, generations, listener)
    report_roles(app, telemetry.metrics, listener, reads)
    fast_path = make_fast_path(
        settings, generations, listener, availability, counters, telemetry, reads
    )
    telemetry.watch(fast_path.cache if fast_path else None, database.engine.pool)
    telemetry.watch_protections(counters, availability)
    executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="presto-wsgi")
    wsgi = wsgi_handler(settings, app, executor)
    read_body = BodyReader(settings.max_body_bytes, settings.body_timeout, counters)
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
        availability=availability, counters=counters, published_reads=reads,
    )  # fmt: skip


def wsgi_handler(
    settings: Settings, app: Flask, executor: ThreadPoolExecutor
) -> Pep3333WSGIHandler:
    """The Flask app behind aiohttp-wsgi, run on `executor`'s threads."""
    return Pep3333WSGIHandler(
        cast(WSGIApplication, app), executor=executor, max_request_body_size=settings.max_body_bytes
    )


def worker_app(
    settings: Settings, generations: MenuGenerations, helpers: HelperLinks | None
) -> Flask:
    """The worker's Flask app, each committed change sent to the helper processes there
    are (the publisher renders the menu, the webhook relay wakes), whose health `/readyz`
    then reports."""
    publish = None if helpers is None or helpers.publish is None else sender(helpers.publish)
    wake_relay = None if helpers is None or helpers.relay is None else sender(helpers.relay)

    def changed(restaurant_id: int) -> None:
        generations.bump(restaurant_id)
        if wake_relay is not None:
            wake_relay(restaurant_id)

    app = create_app(settings, on_menu_change=changed, publish=publish)
    if helpers is not None:
        app.config[FAILING_PROCESSES] = helpers.states.failing
    return app


def change_listener(
    settings: Settings, database: Database, generations: MenuGenerations
) -> MenuChangeListener | None:
    """On PostgreSQL with a cache, the listener the warm path depends on: it hears of
    changes made on other hosts (one more connection per worker)."""
    if settings.cache_bytes <= 0 or database.engine.dialect.name != "postgresql":
        return None
    return make_listener(settings, generations)


def warm_path_reads(
    settings: Settings,
    admission: Admission,
    generations: MenuGenerations,
    listener: MenuChangeListener | None,
) -> PublishedReads | None:
    """The warm path's reads of published menus on a miss (no warm path without a cache):
    from the replica when there is one, routed by what the listener hears."""
    if settings.cache_bytes <= 0:
        return None
    return make_published_reads(settings, admission, generations, listener)


def make_fast_path(
    settings: Settings,
    generations: MenuGenerations,
    listener: MenuChangeListener | None,
    availability: DatabaseAvailability,
    counters: ProtectionCounters,
    telemetry: Telemetry,
    reads: PublishedReads | None,
) -> MenuFastPath | None:
    """The warm path, reading published menus through `reads`; none without a cache."""
    if settings.cache_bytes <= 0:
        return None
    return MenuFastPath(
        MenuCache(settings.cache_bytes),
        generations,
        listener,
        on_load=telemetry.metrics.menu_loaded,
        availability=availability,
        counters=counters,
        reader=None if reads is None else reads.read,
    )


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
        loop_lag=sampled_loop_lag() if settings.shed_loop_lag else None,
        shed_loop_lag=settings.shed_loop_lag,
    )


def sampled_loop_lag() -> LoopLag:
    """The running loop's lag, sampled from now on."""
    lag = LoopLag()
    lag.start()
    return lag
