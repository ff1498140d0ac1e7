"""End to end: what a worker does with connections: parse errors as problems, the header
timeout, the body timeout, the idle timeout, and the cap on open connections, which closes
connections awaiting a request head (then idle ones) before it refuses anyone."""

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

from presto.config import Settings
from presto.serving.connections import FILE_HEADROOM, raise_file_limit
from tests.helpers.http import request
from tests.helpers.server_process import running_presto
from tests.helpers.waiting import wait_until

MENU = "/restaurant/1/item"
# The defaults presto ships, which the floods below run against.
DEFAULTS = Settings()
# A write's head whose body of 10 bytes never comes: the connection is busy with it.
STALLED_WRITE = (
    b"PUT /restaurant/1/item/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 10\r\n\r\n"
)


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
        db_url, tmp_path, "--header-timeout", "1", "--idle-timeout", "1", "--body-timeout", "1",
        "--max-connections", "3",
    ) as presto:  # fmt: skip
        yield presto.address


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    presto: tuple[str, int],
) -> None:
    with socket.create_connection(presto, timeout=5) as sock:
        sock.sendall(b"GET /restaurant/1/item HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        while sock.recv(65536):  # the rest of the body, until the server closes
            pass
        closed = time.monotonic()
    # Kept open while idle for the 1 s timeout, not longer, and not closed with the answer.
    assert 0.8 < closed - answered < 2.5


@pytest.mark.e2e
def test_at_the_cap_a_connection_is_refused_only_when_every_one_is_busy(
    presto: tuple[str, int],
) -> None:
    held = [socket.create_connection(presto, timeout=5) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(STALLED_WRITE)  # busy: the request is read, its body awaited
        time.sleep(0.2)
        status, headers, body = raw_exchange(presto, b"GET /restaurant/1/item HTTP/1.1\r\n\r\n")
        assert status.startswith("HTTP/1.1 503")
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        assert body["status"] == 503
    finally:
        for sock in held:
            sock.close()
    # Once the server has seen the closes, there is room again.
    wait_until(lambda: request(presto, "GET", MENU).status == 200, 5, "no room after the closes")


@pytest.mark.e2e
def test_at_the_cap_the_oldest_connection_awaiting_a_head_makes_room(
    presto: tuple[str, int],
) -> None:
    idle = socket.create_connection(presto, timeout=5)
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200")  # answered, kept alive: idle
    slow = [socket.create_connection(presto, timeout=5) for _ in range(2)]
    try:
        for sock in slow:
            sock.sendall(b"GET /restaurant/1/it")  # half a request line
        time.sleep(0.05)
        assert request(presto, "GET", MENU).status == 200  # at the cap: closes slow[0]
        assert wait_closed(slow[0], time.monotonic() + 0.3)
        slow.append(socket.create_connection(presto, timeout=5))  # the cap again
        assert request(presto, "GET", MENU).status == 200  # closes slow[1], not slow[2]
        assert wait_closed(slow[1], time.monotonic() + 0.3)
        assert still_open(slow[2])
        assert still_open(idle)  # the oldest, but idle: closed only when no head is awaited
    finally:
        for sock in [idle, *slow]:
            sock.close()


@pytest.mark.e2e
def test_at_the_cap_idle_connections_make_room_when_no_head_is_awaited(
    presto: tuple[str, int],
) -> None:
    idle = [socket.create_connection(presto, timeout=5) for _ in range(2)]
    busy = socket.create_connection(presto, timeout=5)
    try:
        for sock in idle:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        busy.sendall(STALLED_WRITE)
        time.sleep(0.1)
        assert request(presto, "GET", MENU).status == 200
        assert wait_closed(idle[0], time.monotonic() + 0.5)  # the oldest idle one
        assert still_open(idle[1])
    finally:
        for sock in [*idle, busy]:
            sock.close()


@pytest.mark.e2e
def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes(
    presto: tuple[str, int],
) -> None:
    with socket.create_connection(presto, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(STALLED_WRITE + b"{")
        answer = receive_all(sock)
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert (problem["status"], problem["instance"]) == (408, "/restaurant/1/item/1")
    assert problem["detail"] == "The request body did not arrive within 1 seconds."
    assert 0.9 < waited < 2.0  # closed right after the answer, no lingering


def receive_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def still_open(sock: socket.socket) -> bool:
    """True if the server has not closed `sock` (nothing to read within 50 ms)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) != b""
    except TimeoutError:
        return True
    except ConnectionResetError:
        return False
    finally:
        sock.settimeout(5)


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
    """Send `data` on every socket the server has not closed (those it closed to make
    room at the cap are skipped)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.sendall(data)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("slow_connections", [1000, 3000])
def test_slow_clients_do_not_keep_others_out_with_the_default_settings(
    db_url: str, tmp_path: Path, slow_connections: int
) -> None:
    """Each slow client sends half a request line, then every 5 s a header (the first
    with the rest of the line); a normal client reads the menu 20 times meanwhile, each
    over a new connection, every read answered under 100 ms."""
    cap = DEFAULTS.max_connections
    with (
        file_limit(slow_connections + 2 * cap),
        running_presto(db_url, tmp_path) as presto,
    ):
        address = presto.address
        assert request(address, "GET", MENU).status == 200  # the menu is cached
        slow = [socket.create_connection(address, timeout=10) for _ in range(slow_connections)]
        try:
            opened = time.monotonic()
            trickle(slow, b"GET /restaurant/1/it")  # half a request line
            latencies = []
            next_header = opened + 5
            for n in range(20):
                if time.monotonic() >= next_header:
                    # The rest of the request line with the first header, then headers.
                    rest = b"em HTTP/1.1\r\n" if next_header == opened + 5 else b""
                    trickle(slow, rest + f"X-Slow-{n}: 1\r\n".encode())
                    next_header += 5
                time.sleep(0.3)
                started = time.monotonic()
                answer = request(address, "GET", MENU)
                latencies.append(time.monotonic() - started)
                assert answer.status == 200
                assert answer.json()[0]["name"] == "Classic Burger"
            deadline = opened + DEFAULTS.header_timeout + 2
            closed = [wait_closed(sock, deadline) for sock in slow]
        finally:
            for sock in slow:
                sock.close()
    assert max(latencies) < 0.1, latencies
    assert all(closed), f"{closed.count(False)} slow connections still open"
    print(
        f"menu under {slow_connections} slow connections: 20 reads, "
        f"max {max(latencies) * 1000:.1f} ms"
    )


def test_the_server_raises_its_open_file_limit_to_fit_the_cap() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        raise_file_limit(DEFAULTS.max_connections)
        raised = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert raised == min(hard, DEFAULTS.max_connections + FILE_HEADROOM)


def wait_closed(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed `sock` (by `deadline`)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
