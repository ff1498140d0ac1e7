"""A webhook consumer for case j: an aiohttp server on 127.0.0.1, in a thread of the
benchmark, that answers every delivery `204` and counts them."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class WebhookSink:
    """Counts the POSTs it answers; `url` once entered."""

    def __init__(self) -> None:
        self.received = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server, listening = self._loop.run_until_complete(self._listen())
        self._ready.set()
        self._loop.run_forever()
        listening.close()
        self._loop.run_until_complete(server.shutdown(1))
        self._loop.close()

    async def _listen(self) -> tuple[web.Server, asyncio.Server]:
        server = web.Server(self._answer)
        listening = await self._loop.create_server(server, "127.0.0.1", 0)
        self.port = listening.sockets[0].getsockname()[1]
        return server, listening

    async def _answer(self, request: web.BaseRequest) -> web.Response:
        await request.read()
        self.received += 1
        return web.Response(status=204)
