"""A webhook consumer for end-to-end tests: an aiohttp server on 127.0.0.1 in a thread of
its own that verifies every request with the `standardwebhooks` reference library and
answers with the statuses a test scripts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.helpers.waiting import wait_until


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it: its `webhook-id`, the parsed body, how many
    signatures it carried, and which of the receiver's secrets verified it."""

    webhook_id: str
    body: dict[str, Any]
    signatures: int
    verified_with: tuple[int, ...]
    status: int
    at: float


class Receiver:
    """Records every request; `answer(n, webhook_id)` picks the status of the n-th request
    (0-based, over all requests) and a `Retry-After` (None: none). `secrets` may change while
    it runs (a rotation)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.answer: Callable[[int, str], tuple[int, str | None]] = lambda _n, _id: (200, None)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server, listening = self._loop.run_until_complete(self._listen())
        self.port = listening.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        listening.close()
        self._loop.run_until_complete(listening.wait_closed())
        self._loop.run_until_complete(server.shutdown(1))
        self._loop.close()

    async def _listen(self) -> tuple[web.Server, asyncio.Server]:
        server = web.Server(self._handle)
        return server, await self._loop.create_server(server, "127.0.0.1", 0)

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        data = await request.read()
        headers = dict(request.headers)
        verified = []
        for index, secret in enumerate(list(self.secrets)):
            try:
                Webhook(secret).verify(data, headers)
            except WebhookVerificationError:
                continue
            verified.append(index)
        with self._lock:
            status, retry_after = self.answer(len(self.received), headers["webhook-id"])
            self.received.append(
                Received(
                    headers["webhook-id"],
                    json.loads(data),
                    len(headers["webhook-signature"].split()),
                    tuple(verified),
                    status,
                    time.monotonic(),
                )
            )
        extra = {} if retry_after is None else {"Retry-After": retry_after}
        return web.Response(status=status, headers=extra)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Wait until `count` requests arrived; all of them."""
        wait_until(
            lambda: len(self.received) >= count,
            timeout,
            lambda: f"{len(self.received)} of {count} arrived",
            interval=0.02,
        )
        return list(self.received)
