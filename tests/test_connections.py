"""End to end: what a worker does with connections: parse errors as problems, the header
timeout, the idle timeout and the cap on open connections."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.http import request, running_presto

MENU = "/restaurant/1/item"
SLOW_CONNECTIONS = 1000
HEADER_TIMEOUT = 3.0


def raw_exchange(address: tuple[str, int], data: bytes) -> tuple[str, dict[str, str], Any]:
    """Send `data` as is; the status line, headers and JSON body of the answer."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)
    }
    return status, headers, json.loads(body)


@pytest.fixture
def presto(db_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A server with short connection timeouts and a cap of 3 connections."""
    with running_presto(
        db_url, tmp_path, "--header-timeout", "1", "--idle-timeout", "1", "--max-connections", "3"
    ) as address:
        yield address


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET / HTTP/1.1\r\nAuthorization: Bearer " + b"k" * 65536 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n", 400),
    ],
    ids=["64kb-authorization", "long-request-line", "bad-request-line", "bad-header"],
)
def test_parse_errors_are_problem_documents(
    presto: tuple[str, int], data: bytes, status: int
) -> None:
    status_line, headers, body = raw_exchange(presto, data)

    assert status_line.split(" ")[1] == str(status)
    assert headers["content-type"] == "application/problem+json"
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert "kkkk" not in body["detail"]  # nothing the client sent comes back
    assert request(presto, "GET", MENU).status == 200


def test_an_incomplete_request_is_closed_after_the_header_timeout(
    presto: tuple[str, int],
) -> None:
    with socket.create_connection(presto, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /restaurant/1/item HTTP/1.1\r\n")
        time.sleep(0.5)
        sock.sendall(b"X-Slow: 1\r\n")
        assert sock.recv(1024) == b""  # closed, without an answer
        assert 0.9 < time.monotonic() - started < 2.5


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    presto: tuple[str, int],
) -> None:
    with socket.create_connection(presto, timeout=5) as sock:
        sock.sendall(b"GET /restaurant/1/item HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        while sock.recv(65536):  # the rest of the body, until the server closes
            pass
        started = time.monotonic()
    assert time.monotonic() - started < 2.5


def test_connections_past_the_cap_get_503_and_are_closed(presto: tuple[str, int]) -> None:
    held = [socket.create_connection(presto, timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)
        status, headers, body = raw_exchange(presto, b"GET /restaurant/1/item HTTP/1.1\r\n\r\n")
        assert status.startswith("HTTP/1.1 503")
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        assert body["status"] == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert request(presto, "GET", MENU).status == 200


@contextlib.contextmanager
def file_limit(at_least: int) -> Iterator[None]:
    """Raise this process's open-file limit (children inherit it) for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(max(soft, at_least), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def trickle(sockets: list[socket.socket], data: bytes) -> None:
    for sock in sockets:
        sock.sendall(data)


def test_a_thousand_slow_clients_do_not_keep_others_out(db_url: str, tmp_path: Path) -> None:
    with (
        file_limit(3 * SLOW_CONNECTIONS),
        running_presto(
            db_url, tmp_path, "--header-timeout", str(HEADER_TIMEOUT),
            "--max-connections", str(2 * SLOW_CONNECTIONS),
        ) as address,
    ):  # fmt: skip
        assert request(address, "GET", MENU).status == 200  # the menu is cached
        slow = [socket.create_connection(address, timeout=10) for _ in range(SLOW_CONNECTIONS)]
        try:
            opened = time.monotonic()
            trickle(slow, b"GET /restaurant/1/it")  # half a request line
            latencies = []
            for n in range(4):
                # Between two trickles, as a client would come along at any moment.
                time.sleep(0.25)
                trickle(slow, b"em HTTP/1.1\r\n" if n == 0 else f"X-Slow-{n}: 1\r\n".encode())
                time.sleep(0.25)
                started = time.monotonic()
                answer = request(address, "GET", MENU)
                latencies.append(time.monotonic() - started)
                assert answer.status == 200
                assert answer.json()[0]["name"] == "Classic Burger"
            assert max(latencies) < 0.1, latencies
            closed = [wait_closed(sock, opened + HEADER_TIMEOUT + 2) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
    assert all(closed), f"{closed.count(False)} slow connections still open"
    print(f"menu under {SLOW_CONNECTIONS} slow connections: max {max(latencies) * 1000:.1f} ms")


def wait_closed(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed `sock` (by `deadline`)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
