"""The ceiling: aiohttp's bare low-level server on uvloop answering fixed bytes.

No routing, no WSGI bridge, no database, no logging: what one Python process can answer
here at best. It returns the bytes presto returned for the same call, so the work on the
wire is the same. `python -m presto.bench.ceiling --port P --workers N --body-file F`;
with several workers, each is a process sharing the port through `SO_REUSEPORT`, the
way `presto serve --workers N` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop
from aiohttp import web


async def serve(
    host: str, port: int, body: bytes, *, reuse_port: bool, content_encoding: str | None = None
) -> None:
    """Answer every request with `body` (in `content_encoding`, if given) until SIGINT or
    SIGTERM."""
    loop = asyncio.get_running_loop()
    headers = {"Content-Encoding": content_encoding} if content_encoding else {}

    async def handle(_request: web.BaseRequest) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers=headers)

    server = web.Server(handle, access_log=None)
    tcp_server = await loop.create_server(server, host, port, reuse_port=reuse_port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"ceiling listening on http://{host}:{port} (pid {os.getpid()})", file=sys.stderr)
    try:
        await stop.wait()
    finally:
        tcp_server.close()
        await server.shutdown(1.0)


def run_worker(
    host: str, port: int, body_file: str, reuse_port: bool, content_encoding: str | None
) -> None:
    """Entry point of one worker process."""
    body = Path(body_file).read_bytes()
    uvloop.run(serve(host, port, body, reuse_port=reuse_port, content_encoding=content_encoding))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker here, or start `--workers` of them and pass signals on."""
    parser = argparse.ArgumentParser(prog="python -m presto.bench.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--body-file", required=True, help="the bytes every response carries")
    parser.add_argument("--content-encoding", help="the coding of those bytes, e.g. gzip")
    args = parser.parse_args(argv)
    worker_args = (args.host, args.port, args.body_file, args.workers > 1, args.content_encoding)
    if args.workers == 1:
        run_worker(*worker_args)
        return 0
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=run_worker, args=worker_args) for _ in range(args.workers)]
    for process in workers:
        process.start()

    def stop(signum: int, _frame: object) -> None:
        for process in workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for process in workers:
        process.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
