"""Offered load for overload tests, run as its own process:
`python -m tests.helpers.load URL SECONDS CLIENTS PAUSE`.

Each client requests URL, waits PAUSE seconds, and again, until SECONDS have passed, so the
load offered is about CLIENTS / PAUSE requests per second whatever the answers are (a client
that retried at once on every 503 would measure the retry storm, not the server).
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp


async def offer(url: str, seconds: float, clients: int, pause: float) -> None:
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            async with session.get(url) as response:
                await response.read()
            await asyncio.sleep(pause)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))


if __name__ == "__main__":
    url, seconds, clients, pause = sys.argv[1:5]
    asyncio.run(offer(url, float(seconds), int(clients), float(pause)))
