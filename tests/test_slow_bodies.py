"""End to end, with the defaults presto ships: request bodies trickled one byte every 2 s
hold no WSGI thread slot and get 408 at `--body-timeout`, their connections closed."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from presto.config import Settings
from tests.helpers.http import request
from tests.helpers.server_process import running_presto

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEFAULTS = Settings()
# More than the threads and the queue together: before the fix, enough to refuse everyone.
TRICKLERS = DEFAULTS.threads + DEFAULTS.max_queue + 12
TRICKLE_SECONDS = 2.0
BODY = b'{"name": "Slow Burger", "price": 100}'
HEAD = (
    b"POST /restaurant/1/item HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n" % len(BODY)
)


def trickle(sockets: list[socket.socket], stop: threading.Event) -> None:
    """One byte of the body on every socket every `TRICKLE_SECONDS`, until `stop`."""
    sent = 0
    while not stop.wait(TRICKLE_SECONDS) and sent < len(BODY) - 1:
        for sock in sockets:
            with contextlib.suppress(OSError):  # answered and closed already
                sock.sendall(BODY[sent : sent + 1])
        sent += 1


def answer_of(sock: socket.socket) -> tuple[bytes, float]:
    """All the server sends until it closes, and when it closed."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic()


def test_trickled_bodies_hold_no_thread_and_get_408(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path) as presto:
        address = presto.address
        sockets = [socket.create_connection(address, timeout=30) for _ in range(TRICKLERS)]
        stop = threading.Event()
        trickler = threading.Thread(target=trickle, args=(sockets, stop), daemon=True)
        try:
            for sock in sockets:
                sock.sendall(HEAD + BODY[:1])
            sent_heads = time.monotonic()
            trickler.start()
            # Uncached calls, which need a thread: none is held by the slow bodies.
            time.sleep(1.0)
            reads = [request(address, "GET", "/restaurant/1").status for _ in range(5)]
            filtered = request(address, "GET", "/restaurant/1/item?category=Burgers")
            answers = [answer_of(sock) for sock in sockets]
        finally:
            stop.set()
            for sock in sockets:
                sock.close()
        metrics = request(address, "GET", "/metrics").body.decode()

    assert reads == [200] * 5
    assert filtered.status == 200
    deadline = DEFAULTS.body_timeout
    for received, closed in answers:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received[:200]
        assert json.loads(body)["status"] == 408
        # At the deadline, and closed right after it, not kept open to read more.
        assert deadline - 0.5 < closed - sent_heads < deadline + 2.0
    timeouts = re.search(r'presto_protection_events_total\{kind="body_timeouts"\} (\S+)', metrics)
    assert timeouts is not None and float(timeouts[1]) == TRICKLERS
