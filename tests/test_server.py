"""End to end: the real server process over real sockets, on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from presto.storage.engine import make_engine
from tests.helpers.server_process import Presto, ServerProcess, running_presto

pytestmark = pytest.mark.e2e


@pytest.fixture
def presto(db_url: str, tmp_path: Path) -> Iterator[Presto]:
    """A one-worker server with the demo menus on a free port."""
    with running_presto(db_url, tmp_path, "--max-body-bytes", "4096") as running:
        yield running


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        response.close()
        return response, body
    finally:
        connection.close()


def test_menu_over_http(presto: Presto) -> None:
    address, server = presto.address, presto.server

    response, body = request(address, "GET", "/restaurant/1/item", headers={"X-Request-ID": "r-42"})

    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("X-Request-ID") == "r-42"
    items: list[dict[str, Any]] = json.loads(body)
    assert items[0]["name"] == "Classic Burger"
    assert items[0]["modifiers"][1]["modifiers"][3]["modifiers"][0]["name"] == "Dressing"
    server.wait_for_line(
        r'presto\.access: 127\.0\.0\.1 "GET /restaurant/1/item" 200 \d+ \d+\.\d{3}ms r-42 "[^"]+"$'
    )


def test_errors_over_http_are_problem_json(presto: Presto) -> None:
    address = presto.address

    for method, path, status in [
        ("GET", "/restaurant/999/item", 404),
        ("GET", "/no/such/route", 404),
        ("DELETE", "/restaurant/1/item", 405),
    ]:
        response, body = request(address, method, path)
        assert response.status == status
        assert response.getheader("Content-Type") == "application/problem+json"
        assert json.loads(body)["status"] == status
        assert response.getheader("X-Request-ID")


def test_a_body_over_the_cap_is_413(presto: Presto) -> None:
    address = presto.address

    response, body = request(address, "POST", "/restaurant/1/item", body=b"x" * 5000)

    assert response.status == 413
    assert response.getheader("Content-Type") == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 413
    assert problem["title"] == "Request Entity Too Large"
    assert problem["instance"] == "/restaurant/1/item"


@pytest.mark.slow
def test_sigterm_lets_an_in_flight_request_finish(presto: Presto) -> None:
    address, server = presto.address, presto.server
    with socket.create_connection(address, timeout=30) as sock:
        # The request is under way: headers sent, half of its body still to come.
        sock.sendall(
            b"GET /restaurant/1/item HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nhello"
        )
        time.sleep(0.3)
        server.terminate(signal.SIGTERM)
        server.wait_for_line("stopping: no new connections")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5).close()
        sock.sendall(b"world")
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        response.close()

    assert response.status == 200
    assert json.loads(body)[0]["name"] == "Classic Burger"
    assert server.wait() == 0
    assert "stopped" in server.output


@pytest.mark.slow
def test_sigint_stops_an_idle_server(presto: Presto) -> None:
    server = presto.server
    server.terminate(signal.SIGINT)
    assert server.wait() == 0


@pytest.mark.slow
def test_two_workers_share_the_port(db_url: str, tmp_path: Path) -> None:
    """With `--port 0` the OS picks one port, and both workers listen on it."""
    with running_presto(db_url, tmp_path, workers=2) as presto:
        server, port = presto.server, presto.port
        listening = server.wait_for_line("presto listening", count=2)
        pids = {line.rsplit("pid ", 1)[1] for line in listening}
        assert len(pids) == 2
        assert port != 0
        assert all(f"http://127.0.0.1:{port} " in line for line in listening)
        for _ in range(20):
            response, body = request(("127.0.0.1", port), "GET", "/restaurant/2/item")
            assert response.status == 200
            assert json.loads(body)[0]["currency"] == "EUR"
        server.terminate(signal.SIGTERM)
        assert server.wait() == 0
        assert len(server.wait_for_line(r"presto.server: stopped$", count=2)) == 2


def test_repeated_menu_calls_and_304_over_http(presto: Presto) -> None:
    address = presto.address

    first, first_body = request(address, "GET", "/restaurant/1/item")
    second, second_body = request(
        address, "GET", "/restaurant/1/item", headers={"X-Request-ID": "r2"}
    )
    tag = first.getheader("ETag")
    assert tag is not None
    not_modified, empty = request(
        address, "GET", "/restaurant/1/item", headers={"If-None-Match": tag}
    )

    assert (first.status, second.status, not_modified.status) == (200, 200, 304)
    assert second_body == first_body
    assert second.getheader("ETag") == tag
    assert second.getheader("X-Request-ID") == "r2"
    assert second.getheader("Content-Type") == "application/json"
    assert empty == b""
    assert not_modified.getheader("ETag") == tag
    assert not_modified.getheader("Cache-Control") == "public, no-cache"


@pytest.mark.slow
@pytest.mark.parametrize(("cache_bytes", "sees_the_change"), [("0", True), ("1000000", False)])
def test_the_cache_can_be_turned_off(
    db_url: str, tmp_path: Path, cache_bytes: str, sees_the_change: bool
) -> None:
    # A change made behind presto's back (plain SQL, the version bumped but no NOTIFY)
    # shows only when every request reads the database, i.e. with the cache off.
    engine = make_engine(db_url)
    try:
        with running_presto(db_url, tmp_path, "--cache-bytes", cache_bytes) as presto:
            address, server = presto.address, presto.server
            if db_url.startswith("postgresql") and cache_bytes != "0":
                # The cache answers only once the worker hears of other hosts' changes.
                server.wait_for_line("listening for menu changes")
            before = json.loads(request(address, "GET", "/restaurant/3/item")[1])
            with engine.begin() as connection:
                connection.execute(sa.text("UPDATE item SET name = 'Sake Nigiri' WHERE id = :id"),
                                   {"id": before[0]["id"]})  # fmt: skip
                connection.execute(sa.text("UPDATE restaurant SET menu_version = menu_version + 1"))
            after = json.loads(request(address, "GET", "/restaurant/3/item")[1])
            assert before[0]["name"] == "Salmon Nigiri"
            assert after[0]["name"] == ("Sake Nigiri" if sees_the_change else "Salmon Nigiri")
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_port_in_use_is_a_clear_error(presto: Presto, db_url: str, tmp_path: Path) -> None:
    port = presto.port
    # A start that fails: the bare process, to see its exit code.
    second = ServerProcess("--port", str(port), "--database-url", db_url, cwd=tmp_path)
    try:
        assert second.wait() == 1
        assert f"cannot listen on 127.0.0.1:{port}" in second.output
        assert "address already in use" in second.output.lower()
        assert "Traceback" not in second.output
    finally:
        second.stop()
