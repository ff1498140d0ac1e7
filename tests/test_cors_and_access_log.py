"""CORS headers and the access log of a real `presto serve`, over real sockets.

(`tests/test_browser_cors.py` runs the same rules in Chromium.)
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from presto.serving.accesslog import log_text, request_target
from presto.serving.clients import client_address
from tests.helpers.server_process import ServerProcess, running_presto

WRITER = "https://admin.example.com"
OTHER = "https://shop.example.org"

Start = Callable[..., tuple[ServerProcess, int]]


@pytest.fixture
def start(db_url: str, tmp_path: Path) -> Iterator[Start]:
    with contextlib.ExitStack() as started:

        def run(*extra: str) -> tuple[ServerProcess, int]:
            presto = started.enter_context(running_presto(db_url, tmp_path, *extra))
            return presto.server, presto.port

        yield run


def call(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, http.client.HTTPMessage]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, response.headers
    finally:
        connection.close()


def preflight(port: int, origin: str, method: str) -> tuple[int, http.client.HTTPMessage]:
    return call(
        port,
        "OPTIONS",
        "/restaurant/1/item/1",
        {
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,if-match",
        },
    )


@pytest.mark.e2e
def test_cors_reads_from_anywhere_writes_from_configured_origins(start: Start) -> None:
    _process, port = start("--cors-origins", WRITER)

    status, headers = preflight(port, WRITER, "PATCH")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == WRITER
    assert "PATCH" in headers["Access-Control-Allow-Methods"].split(", ")
    allowed = headers["Access-Control-Allow-Headers"].split(", ")
    assert {"Authorization", "If-Match", "Content-Type"} <= set(allowed)
    assert headers["Access-Control-Max-Age"] == "7200"
    assert headers["Vary"] == "Origin"

    status, headers = preflight(port, OTHER, "PATCH")
    assert (status, headers["Access-Control-Allow-Origin"]) == (204, "*")
    assert headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert "Authorization" not in headers["Access-Control-Allow-Headers"]

    status, headers = call(port, "GET", "/restaurant/1/item", {"Origin": OTHER})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")
    assert "ETag" in headers["Access-Control-Expose-Headers"].split(", ")
    # A second call comes from the cache and carries the same headers.
    status, headers = call(port, "GET", "/restaurant/1/item", {"Origin": OTHER})
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "*")

    # A write from another origin gets no CORS header: the page cannot read the answer.
    body = json.dumps({"name": "X"}).encode()
    json_type = {"Content-Type": "application/json"}
    status, headers = call(port, "POST", "/restaurant/1/item", {"Origin": OTHER, **json_type}, body)
    assert status == 401
    assert "Access-Control-Allow-Origin" not in headers
    status, headers = call(
        port, "POST", "/restaurant/1/item", {"Origin": WRITER, **json_type}, body
    )
    assert (status, headers["Access-Control-Allow-Origin"]) == (401, WRITER)

    # Without Origin (not a browser page) nothing changes.
    status, headers = call(port, "GET", "/restaurant/1/item", {})
    assert "Access-Control-Allow-Origin" not in headers


ACCESS_KEYS = {
    "time", "level", "pid", "logger", "message", "client", "method", "path", "status",
    "bytes", "duration_us", "request_id", "user_agent", "stale_if_error",
}  # fmt: skip


def json_lines(process: ServerProcess, logger: str) -> list[dict[str, object]]:
    objects = [json.loads(line) for line in process.lines]
    return [entry for entry in objects if entry["logger"] == logger]


@pytest.mark.e2e
def test_json_log_lines_with_forwarded_client(start: Start) -> None:
    process, port = start("--log-format", "json", "--trusted-proxies", "127.0.0.1,10.0.0.0/8")
    forwarded = {"X-Forwarded-For": "192.0.2.1, 198.51.100.9, 10.1.2.3", "User-Agent": "menu-app/2"}

    call(port, "GET", "/restaurant/1/item?all=true", {**forwarded, "X-Request-ID": "r-1"})
    call(port, "GET", "/healthz", {"X-Request-ID": "r-2"})
    call(port, "GET", "/readyz", {"X-Request-ID": "r-3"})
    call(port, "GET", "/nope", {"X-Request-ID": "r-4"})
    process.wait_for_line('"request_id":"r-4"')

    # Every line is one JSON object, the server's own lines too.
    assert str(json_lines(process, "presto.server")[-1]["message"]).startswith("presto listening")
    access = json_lines(process, "presto.access")
    assert [entry["request_id"] for entry in access] == ["r-1", "r-4"]  # no health checks
    menu = access[0]
    assert set(menu) == ACCESS_KEYS
    # 10.1.2.3 is a trusted proxy too; 192.0.2.1 is what the client claimed, unverified.
    assert (menu["client"], menu["user_agent"]) == ("198.51.100.9", "menu-app/2")
    assert (menu["method"], menu["path"], menu["status"]) == (
        "GET",
        "/restaurant/1/item?all=true",
        200,
    )
    assert isinstance(menu["duration_us"], int) and menu["duration_us"] > 0
    assert menu["stale_if_error"] is False
    assert isinstance(menu["bytes"], int) and menu["bytes"] > 1000
    assert (access[1]["client"], access[1]["status"]) == ("127.0.0.1", 404)


@pytest.mark.e2e
def test_health_checks_logged_when_asked(start: Start) -> None:
    process, port = start("--log-health-checks")
    call(port, "GET", "/healthz", {"X-Request-ID": "h-1"})
    line = process.wait_for_line(r"h-1")[0]
    assert '127.0.0.1 "GET /healthz" 200 ' in line


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy of ours: its claim is ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.7", "1.2.3.4"),  # nearest untrusted hop
        ("10.0.0.5", "10.0.0.8, 10.0.0.7", "10.0.0.8"),  # all ours: the first
        # A hop that is not an address is never logged: the trusted hop that passed it on is.
        ("10.0.0.5", 'x" 200 0 "forged', "10.0.0.5"),
        ("10.0.0.5", "unknown, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.5", "1.2.3.4, evil.example, 10.0.0.7", "10.0.0.7"),
        ("10.0.0.5", "1.2.3.4,, 10.0.0.7", "1.2.3.4"),  # an empty hop is no hop
        ("10.0.0.5", "2001:DB8::1", "2001:db8::1"),  # logged as the address, normalized
    ],
)
def test_client_address(peer: str, forwarded: str | None, client: str) -> None:
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    request = make_mocked_request("GET", "/", headers=headers, transport=transport)
    assert client_address(request, (ipaddress.ip_network("10.0.0.0/8"),)) == client


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("/restaurant/1/item?all=true&tag=vegan", "/restaurant/1/item?all=true&tag=vegan"),
        ("/restaurant/%31/item", "/restaurant/%31/item"),  # as sent, not re-encoded
        ('/restaurant/1/item?q="x"', "/restaurant/1/item?q=%22x%22"),  # no quote in the line
        ("/restaurant/1/item?q=a\\b", "/restaurant/1/item?q=a%5Cb"),
        ("/men\u00fc", "/men%C3%BC"),
        ("/a\udcff\x01b", "/a%FF%01b"),  # an undecodable byte and a control character
    ],
)
def test_the_logged_target_is_as_sent_unless_it_would_break_the_line(
    target: str, logged: str
) -> None:
    assert request_target(make_mocked_request("GET", target)) == logged


@pytest.mark.parametrize(
    ("agent", "text", "in_json"),
    [
        ("curl/8.5", "curl/8.5", "curl/8.5"),
        ('x" 500 1 "forged', 'x\\" 500 1 \\"forged', 'x" 500 1 "forged'),
        ("back\\slash", "back\\\\slash", "back\\slash"),
        ("bad\udcff\udcfe", "bad\\xff\\xfe", "bad\\xff\\xfe"),  # not UTF-8 as sent
        ("tab\there\x7f", "tab\\x09here\\x7f", "tab\\x09here\\x7f"),
        ("caf\u00e9", "caf\u00e9", "caf\u00e9"),  # valid UTF-8 stays as it is
    ],
)
def test_user_agents_are_escaped_for_the_line(agent: str, text: str, in_json: str) -> None:
    assert (log_text(agent, quoted=True), log_text(agent, quoted=False)) == (text, in_json)


def raw_request(port: int, head: bytes) -> bytes:
    """Send a request head as raw bytes (http.client would refuse them); the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


HOSTILE_AGENT = b'evil\xff\xfe" 200 0 "x'
HOSTILE_HEAD = (
    b'GET /restaurant/1/item?q="x" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
    b"X-Request-ID: %s\r\nUser-Agent: " + HOSTILE_AGENT + b"\r\n\r\n"
)


@pytest.mark.e2e
def test_a_user_agent_not_utf8_keeps_its_json_line(start: Start) -> None:
    process, port = start("--log-format", "json")
    assert raw_request(port, HOSTILE_HEAD % b"bad-1").startswith(b"HTTP/1.1 422")
    process.wait_for_line('"request_id":"bad-1"')
    (entry,) = [line for line in json_lines(process, "presto.access")]
    assert entry["user_agent"] == 'evil\\xff\\xfe" 200 0 "x'
    assert (entry["path"], entry["status"]) == ("/restaurant/1/item?q=%22x%22", 422)


@pytest.mark.e2e
def test_a_quote_in_a_user_agent_forges_no_text_field(start: Start) -> None:
    process, port = start()
    assert raw_request(port, HOSTILE_HEAD % b"bad-2").startswith(b"HTTP/1.1 422")
    (line,) = process.wait_for_line("bad-2")
    assert '127.0.0.1 "GET /restaurant/1/item?q=%22x%22" 422 ' in line
    assert line.endswith(' bad-2 "evil\\xff\\xfe\\" 200 0 \\"x"')
    # Every field after the target is where it belongs: status, bytes, duration, id, agent.
    fields = line.split('" ', 1)[1].split(" ", 4)
    assert fields[0] == "422" and fields[1].isdigit() and fields[2].endswith("ms")
    assert fields[3] == "bad-2"
