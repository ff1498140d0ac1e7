"""A webhook consumer for case j: an aiohttp server on 127.0.0.1 that answers every
delivery `204` and counts them, in a process of its own, as a consumer is never in the
process that measures the writes (a thread there would take the measuring loop's GIL)."""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from aiohttp import web

START_SECONDS = 30


class WebhookSink:
    """Counts the POSTs it answers; `url` once entered."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._received: Synchronized[int] = context.Value("q", 0)
        self._port: Synchronized[int] = context.Value("i", 0)
        self._ready = context.Event()
        self._stop = context.Event()
        self._process = context.Process(
            target=serve,
            args=(self._received, self._port, self._ready, self._stop),
            name="webhook-sink",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port.value}/hook"

    @property
    def received(self) -> int:
        return int(self._received.value)

    def __enter__(self) -> WebhookSink:
        self._process.start()
        if not self._ready.wait(START_SECONDS):
            self._process.kill()
            raise RuntimeError("the webhook sink did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def serve(received: Synchronized[int], port: Synchronized[int], ready: Any, stop: Any) -> None:
    """The sink process: listen on a free port, publish it, answer until `stop` is set."""

    async def answer(request: web.BaseRequest) -> web.Response:
        await request.read()
        with received.get_lock():
            received.value += 1
        return web.Response(status=204)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = web.Server(answer)
        listening = await loop.create_server(server, "127.0.0.1", 0)
        port.value = listening.sockets[0].getsockname()[1]
        ready.set()
        await loop.run_in_executor(None, stop.wait)
        listening.close()
        await server.shutdown(1)

    asyncio.run(main())
