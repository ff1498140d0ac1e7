"""The webhook relay: delivers the outbox's events (presto.services.outbox) after their
changes commit, in every worker of `presto serve`, as a task on the worker's event loop.

It wakes when a write of its worker commits, when the worker's listener hears a change
made elsewhere (PostgreSQL `NOTIFY`), and at least every `POLL_SECONDS`. Each round claims
due deliveries (presto.storage.webhook_queue: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
relays of every worker and host share the work and no attempt is sent twice), POSTs each
signed (presto.services.webhook_delivery) with a `TIMEOUT` through a resolver that
refuses non-public addresses at connect time (presto.services.webhook_urls), and records
the outcomes. A relay sends one endpoint's deliveries one at a time, oldest first, up to
`BATCH` from one claim, and records them in one transaction; at most
`--webhook-concurrency` endpoints are sent to at once per worker. The database work runs
in one thread of its own, on an engine of its own (one connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from prometheus_client import Counter, Gauge
from sqlalchemy.exc import DBAPIError

from presto import __version__
from presto.config import Settings
from presto.services import webhook_delivery
from presto.services.webhook_urls import UnsafeUrlError, check_address
from presto.storage import webhook_queue
from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.webhook_queue import Attempt, Claimed

log = logging.getLogger("presto.webhooks")

# Seconds between rounds when nothing wakes the relay.
POLL_SECONDS = 1.0
# Seconds one attempt may take, connecting included (the specification: 15 to 30).
TIMEOUT = 15.0
# Finished deliveries (and events nobody is owed) are kept this long, for the deliveries
# list and replays, then purged; each relay purges at most every `PURGE_EVERY` seconds.
RETENTION = timedelta(days=7)
PURGE_EVERY = 600.0
# Deliveries of one endpoint a relay claims and sends in a row, oldest first, recording
# them in one transaction; it stops early when half the claim's lease has passed, so no
# other relay takes a delivery while it is still being sent.
BATCH = 16
# Seconds a round waits after a change commits, so that the events of a burst of writes
# (a POS sending one edit after another) are claimed and recorded together: one claim and
# one record per burst instead of per write, at the cost of that much delay.
WAKE_DELAY = 0.05
HALF_LEASE = webhook_queue.LEASE.total_seconds() / 2
# Bytes of a response body read (and ignored): enough to let the connection be reused.
RESPONSE_BYTES = 4096


class PublicResolver(AbstractResolver):
    """Resolves as aiohttp does, then refuses a name with any non-public address, at the
    moment of connecting (a name that resolved to a public address at registration may
    resolve to a private one now)."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            check_address(host, result["host"], allow_private=False)
        return results

    async def close(self) -> None:
        await self._resolver.close()


class RelayMetrics:
    """The relay's families in `/metrics` (multiprocess: counters add up over workers,
    gauges read from the database show the largest value any worker saw last)."""

    def __init__(self) -> None:
        self.deliveries = Counter(
            "presto_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered, retried, failed (given up on).",
            ("outcome",),
            registry=None,
        )
        self.retries = Counter(
            "presto_webhook_retries", "Webhook attempts that were retries.", registry=None
        )
        self.oldest = Gauge(
            "presto_webhook_oldest_pending_seconds",
            "Age of the oldest event not yet delivered to some endpoint (0: none).",
            registry=None,
            multiprocess_mode="livemax",
        )
        self.disabled = Gauge(
            "presto_webhook_endpoints_disabled",
            "Webhook endpoints disabled (a 410, or every retry failed).",
            registry=None,
            multiprocess_mode="livemax",
        )


class WebhookRelay:
    """One worker's relay; `run` until cancelled, `wake` from any thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.allow_private = settings.webhook_allow_private
        self.engine = make_engine(
            settings.database_url,
            pool_size=1,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.statement_timeout,
            transaction_pooler=settings.database_pooler == "transaction",
            # Every step is retried by the next round: no ping before each one.
            pre_ping=False,
        )
        self.sessions = make_sessionmaker(self.engine)
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="presto-webhooks")
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.slots = asyncio.Semaphore(settings.webhook_concurrency)
        self.busy: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.metrics = RelayMetrics()
        self.purged_at = 0.0
        # When the queue's state was last read, and the next due time it or this relay's
        # retries set (None: nothing known to wait for).
        self.observed_at = float("-inf")
        self.next_due: datetime | None = None
        # The round a committed change asked for, while it waits for `WAKE_DELAY`.
        self.waking: asyncio.TimerHandle | None = None

    def wake(self, _restaurant_id: int | None = None) -> None:
        """Start a round `WAKE_DELAY` from now (a change committed), unless one is due
        sooner; safe from any thread."""
        self.loop.call_soon_threadsafe(self._wake_soon)

    def _wake_soon(self) -> None:
        if self.waking is None:
            self.waking = self.loop.call_later(WAKE_DELAY, self._wake_now)

    def _wake_now(self) -> None:
        self.waking = None
        self.wakeup.set()

    async def _db(self, function: Any, *args: Any) -> Any:
        """Run `function(session, *args)` in the relay's database thread."""

        def call() -> Any:
            with self.sessions() as session:
                return function(session, *args)

        return await self.loop.run_in_executor(self.executor, call)

    async def run(self) -> None:
        """Claim and deliver until cancelled; a failing round is logged and retried."""
        connector = aiohttp.TCPConnector(
            limit=self.settings.webhook_concurrency,
            resolver=None if self.allow_private else PublicResolver(),
        )
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        headers = {"User-Agent": f"presto/{__version__} (webhooks)"}
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers=headers
        ) as client:
            self.client = client
            while True:
                try:
                    await self._round()
                except Exception as exc:
                    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                        # A restart or failover of the database: the next round reconnects.
                        log.warning("webhook relay lost its database connection; reconnecting")
                    else:
                        log.exception("webhook relay round failed; trying again")
                    await asyncio.sleep(POLL_SECONDS)

    async def _round(self) -> None:
        """Claim what is due and start its attempts, read the queue's state for `/metrics`
        at most every `POLL_SECONDS`, then wait to be woken, for a retry, or the timer."""
        self.wakeup.clear()
        now = datetime.now(UTC)
        if time.monotonic() - self.purged_at > PURGE_EVERY:
            self.purged_at = time.monotonic()
            await self._db(webhook_queue.purge, now - RETENTION)
        free = self.settings.webhook_concurrency - len(self.tasks)
        if free > 0:
            # Each endpoint's attempts wake the relay when they end, for its next ones.
            await self._claim(now, free)
        if time.monotonic() - self.observed_at >= POLL_SECONDS:
            self.observed_at = time.monotonic()
            state = await self._db(webhook_queue.queue_state)
            self._observe(state, now)
            self.next_due = state.next_due
        wait = POLL_SECONDS
        if self.next_due is not None and self.next_due > now:
            wait = min(wait, (self.next_due - now).total_seconds())
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` can swallow the
        # task's cancellation when the event is set at the same moment, and the relay
        # would outlive the worker's shutdown.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self.wakeup.wait()

    async def _claim(self, now: datetime, free: int) -> None:
        """Claim due deliveries and start one task per endpoint for up to `free`
        endpoints, each sending up to `BATCH` of its deliveries oldest first; what the
        tasks will not send is given back at once."""
        claimed = await self._db(webhook_queue.claim_due, now, free * BATCH, set(self.busy))
        batches: dict[int, list[Claimed]] = {}
        for delivery in claimed:
            batches.setdefault(delivery.endpoint_id, []).append(delivery)
        unsent = [d for endpoint in list(batches)[free:] for d in batches.pop(endpoint)]
        for batch in batches.values():
            unsent += batch[BATCH:]
            del batch[BATCH:]
        if unsent:
            await self._db(webhook_queue.release, [d.delivery_id for d in unsent], now)
        for endpoint_id, batch in batches.items():
            self.busy.add(endpoint_id)
            task = asyncio.create_task(self._deliver_batch(endpoint_id, batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _observe(self, state: webhook_queue.QueueState, now: datetime) -> None:
        oldest = state.oldest_pending
        self.metrics.oldest.set(0 if oldest is None else (now - oldest).total_seconds())
        self.metrics.disabled.set(state.disabled_endpoints)

    async def _deliver_batch(self, endpoint_id: int, batch: list[Claimed]) -> None:
        """The endpoint's claimed deliveries; its next ones are claimed after them."""
        try:
            async with self.slots:
                await self._deliver(batch)
        finally:
            self.busy.discard(endpoint_id)
            self.wakeup.set()

    async def _deliver(self, batch: list[Claimed]) -> None:
        """Attempt the deliveries in order until one is not delivered (the rest go back
        to the queue, so a failing endpoint holds no slot) or half the lease has passed;
        then record every outcome in one transaction, and what follows from the last."""
        started = time.monotonic()
        outcomes: list[webhook_queue.Outcome] = []
        disable_reason = None
        for delivery in batch:
            now = datetime.now(UTC)
            attempt, retry_after = await self._attempt(delivery, now)
            attempts = delivery.attempts + 1
            verdict = webhook_delivery.verdict(
                attempt.status, attempts, now,
                scale=self.settings.webhook_retry_scale, retry_after=retry_after,
            )  # fmt: skip
            outcomes.append(
                webhook_queue.Outcome(
                    delivery.delivery_id, attempt, verdict.state, verdict.next_attempt_at, attempts
                )
            )
            self._count(verdict.state, delivery.attempts)
            if verdict.next_attempt_at is not None:
                self._retry_at(verdict.next_attempt_at)
            disable_reason = verdict.disable_reason
            if verdict.state != "delivered" or time.monotonic() - started > HALF_LEASE:
                break
        unsent = [d.delivery_id for d in batch[len(outcomes) :]]
        await self._db(webhook_queue.record_attempts, outcomes, unsent, datetime.now(UTC))
        last = batch[len(outcomes) - 1]
        if disable_reason is not None and await self._db(
            webhook_queue.disable_endpoint, last.endpoint_id, disable_reason
        ):
            log.warning(
                "webhook endpoint %d disabled: %s (event %s)",
                last.endpoint_id, disable_reason, last.event_id,
            )  # fmt: skip

    def _retry_at(self, moment: datetime) -> None:
        """Wait no longer than `moment` for this relay's own retry."""
        known = self.next_due
        if known is None or known <= datetime.now(UTC) or moment < known:
            self.next_due = moment

    def _count(self, state: str, earlier_attempts: int) -> None:
        outcome = {"delivered": "delivered", "pending": "retried"}.get(state, "failed")
        self.metrics.deliveries.labels(outcome=outcome).inc()
        if earlier_attempts:
            self.metrics.retries.inc()

    async def _attempt(self, delivery: Claimed, now: datetime) -> tuple[Attempt, float | None]:
        """POST the event once; what came back, and its `Retry-After` in seconds."""
        secrets = [delivery.secret]
        until = delivery.previous_secret_until
        if delivery.previous_secret and until is not None and now < until:
            secrets.append(delivery.previous_secret)
        headers = webhook_delivery.signed_headers(
            secrets, delivery.event_id, int(now.timestamp()), delivery.body
        )
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after = None
        try:
            self._check_literal_host(delivery.url)
            async with self.client.post(
                delivery.url, data=delivery.body.encode(), headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after = webhook_delivery.retry_after_seconds(
                    response.headers.get("Retry-After")
                )
                await response.content.read(RESPONSE_BYTES)
        except (aiohttp.ClientError, TimeoutError, OSError, UnsafeUrlError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration = round((time.perf_counter() - started) * 1000)
        if status is None or status >= 300:
            log.info(
                "webhook %s to endpoint %d: %s", delivery.event_id, delivery.endpoint_id,
                status if status is not None else error,
            )  # fmt: skip
        return Attempt(now, status, error, duration), retry_after

    def _check_literal_host(self, url: str) -> None:
        """An address in the URL itself is never resolved, so it is checked here."""
        host = urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        check_address(host, host, allow_private=self.allow_private)

    async def close(self) -> None:
        """Cancel attempts in flight (their leases expire and another round sends them)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.executor.shutdown(wait=True)
        self.engine.dispose()
