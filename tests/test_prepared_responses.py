"""Cache hits written from a prepared head (`presto.serving.prepared`), over real sockets:
the same headers and bytes as the response the miss made, HTTP/1.1 connection handling
(pipelining, `Connection: close`, HTTP/1.0) and back-pressure, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from presto.serving.prepared import PreparedResponse, header_lines
from tests.helpers.server_process import running_presto

MENU = "/restaurant/1/item"
# Headers that differ from one response to the next.
PER_RESPONSE = {"date", "x-request-id"}


@pytest.fixture
def address(db_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A one-worker server with the demo menus; its address."""
    with running_presto(db_url, tmp_path, "--cors-origins", "https://shop.example") as presto:
        yield presto.address


class Reader:
    """HTTP/1.x responses read off one socket: status line, headers, Content-Length body."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self) -> tuple[str, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed before the headers"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status, *lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.lower(), value.strip()
            # A repeated field is one comma-separated list (RFC 9110 5.3).
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "connection closed before the body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True if the server closes the connection with nothing more to read."""
        self.sock.settimeout(10)
        return not self.buffer and not self._fill()


def exchange(
    address: tuple[str, int], *requests: bytes
) -> Iterator[tuple[str, dict[str, str], bytes]]:
    """Send `requests` at once on one connection and read as many responses."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(b"".join(requests))
        reader = Reader(sock)
        for _ in requests:
            yield reader.response()


def get(path: str = MENU, version: str = "1.1", **headers: str) -> bytes:
    lines = [f"GET {path} HTTP/{version}", "Host: localhost"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.e2e
@pytest.mark.parametrize("encoding", [{}, {"Accept_Encoding": "gzip"}])
def test_a_hit_sends_what_the_miss_sent(address: tuple[str, int], encoding: dict[str, str]) -> None:
    (miss_status, miss, miss_body), (hit_status, hit, hit_body) = exchange(
        address, get(X_Request_ID="r-1", **encoding), get(X_Request_ID="r-2", **encoding)
    )
    assert miss_status == hit_status == "HTTP/1.1 200 OK"
    assert hit_body == miss_body
    assert {k: v for k, v in hit.items() if k not in PER_RESPONSE} == {
        k: v for k, v in miss.items() if k not in PER_RESPONSE
    }
    assert (miss["x-request-id"], hit["x-request-id"]) == ("r-1", "r-2")
    assert hit["content-length"] == str(len(hit_body))
    assert hit["server"].startswith("Python/3") and "aiohttp/" in hit["server"]
    assert hit["date"].endswith(" GMT")
    assert hit["vary"] == "Accept-Encoding"
    assert hit["etag"].startswith('"') and hit["cache-control"]
    if encoding:
        assert hit["content-encoding"] == "gzip"
        assert hit["etag"].endswith('-gzip"')
        body = gzip.decompress(hit_body)
    else:
        assert "content-encoding" not in hit
        body = hit_body
    assert body.startswith(b"[{") and body.endswith(b"}]")


@pytest.mark.e2e
def test_pipelined_hits_come_back_whole_and_in_order(address: tuple[str, int]) -> None:
    ids = [f"p-{n}" for n in range(8)]
    answers = list(exchange(address, *(get(X_Request_ID=i) for i in ids)))
    assert [headers["x-request-id"] for _status, headers, _body in answers] == ids
    assert len({body for _status, _headers, body in answers}) == 1


@pytest.mark.e2e
def test_connection_close_is_answered_and_honoured(address: tuple[str, int]) -> None:
    list(exchange(address, get()))  # cached now
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(get(Connection="close"))
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert status == "HTTP/1.1 200 OK"
        assert headers["connection"] == "close"
        assert reader.closed()
    assert body.startswith(b"[{")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("connection", "kept"), [({}, False), ({"Connection": "keep-alive"}, True)]
)
def test_an_http_10_client_gets_the_menu_with_its_own_version(
    address: tuple[str, int], connection: dict[str, str], kept: bool
) -> None:
    (_, _, expected), *_ = exchange(address, get(), get())
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(get(version="1.0", **connection))
        reader = Reader(sock)
        status, headers, body = reader.response()
        assert status == "HTTP/1.0 200 OK"
        assert body == expected
        if kept:
            assert headers["connection"].lower() == "keep-alive"
            sock.sendall(get(version="1.0", **connection))
            assert reader.response()[2] == expected
        else:
            assert reader.closed()


@pytest.mark.e2e
def test_a_cross_origin_hit_carries_the_cors_headers(address: tuple[str, int]) -> None:
    origin = {"Origin": "https://shop.example"}
    (_, miss, _), (_, hit, _) = exchange(address, get(**origin), get(**origin))
    assert hit["access-control-allow-origin"] == miss["access-control-allow-origin"]
    assert hit["access-control-expose-headers"] == miss["access-control-expose-headers"]


@pytest.mark.e2e
def test_a_slow_reader_gets_every_byte(address: tuple[str, int]) -> None:
    (_, _, expected), *_ = exchange(address, get(), get())
    count = 40  # some 1.5 MB of answers, far more than the socket buffers hold
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(address)
        sock.sendall(get() * count)
        time.sleep(1.0)  # the server fills the buffers and must wait to write the rest
        reader = Reader(sock)
        bodies = [reader.response()[2] for _ in range(count)]
    assert bodies == [expected] * count


def test_a_line_break_in_a_header_is_refused() -> None:
    assert header_lines([("ETag", '"m1"')]) == b'ETag: "m1"\r\n'
    assert header_lines(CIMultiDict({"X-Request-ID": "r-1", "Vary": "Origin"}).items()) == (
        b"X-Request-ID: r-1\r\nVary: Origin\r\n"
    )
    with pytest.raises(ValueError, match="line break"):
        header_lines([("X-Note", "a\r\nSet-Cookie: x=1")])
    with pytest.raises(ValueError, match="line break"):
        header_lines(CIMultiDict({"X-Note": "a\nb"}).items())


def test_a_response_to_a_closing_connection_is_a_connection_error() -> None:
    request = make_mocked_request("GET", MENU)
    request.transport.is_closing.return_value = True  # type: ignore[union-attr]
    response = PreparedResponse(b"HTTP/1.1 200 OK\r\n", b"[]", ())

    async def send() -> None:
        await response.prepare(request)
        await response.write_eof()

    with pytest.raises(ConnectionResetError):
        asyncio.run(send())
    assert response.body_length == 0


def patch(path: str, version: str = "1.1", **headers: str) -> bytes:
    """A `PATCH` with a small JSON body and a bearer key nobody has."""
    body = b'{"price": 1}'
    lines = [f"PATCH {path} HTTP/{version}", "Host: localhost", "Content-Type: application/json"]
    lines += ["Authorization: Bearer presto_nobody", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.e2e
def test_a_refusal_is_a_whole_problem_from_a_prepared_head(db_url: str, tmp_path: Path) -> None:
    """A 429 (`PreparedProblem`): status line, fixed fields once, per-answer fields, the
    problem with its path; pipelined with more answers; HTTP/1.0 gets its own version."""
    options = ("--write-rate-limit", "1", "--cors-origins", "https://shop.example")
    with running_presto(db_url, tmp_path, *options) as presto:
        address = presto.address
        origin = "https://shop.example"
        answers = list(
            exchange(
                address,
                patch(f"{MENU}/1", X_Request_ID="w-1"),  # spends the one write: 401
                patch(f"{MENU}/2", X_Request_ID="w-2", Origin=origin),  # 429
                patch(f"{MENU}/3", X_Request_ID="w-3"),  # 429, another path
                get(X_Request_ID="r-1"),
            )
        )
        with socket.create_connection(address, timeout=30) as sock:
            sock.sendall(patch(f"{MENU}/2", version="1.0"))
            old = Reader(sock).response()
    statuses = [status for status, _headers, _body in answers]
    assert statuses[0].startswith("HTTP/1.1 401 ")  # Flask's own reason phrase
    assert statuses[1:] == [
        "HTTP/1.1 429 Too Many Requests",
        "HTTP/1.1 429 Too Many Requests",
        "HTTP/1.1 200 OK",
    ]
    _, refused, body = answers[1]
    assert refused["content-type"] == "application/problem+json"
    assert refused["ratelimit-policy"] == '"writes";q=1;w=60'  # once, not repeated
    assert refused["ratelimit"].startswith('"writes";r=0;t=')
    assert 1 <= int(refused["retry-after"]) <= 60
    assert (refused["x-request-id"], refused["content-length"]) == ("w-2", str(len(body)))
    assert refused["access-control-allow-origin"] == origin
    assert refused["date"].endswith(" GMT")
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too many writes.",
        "instance": f"{MENU}/2",
    }
    assert json.loads(answers[2][2])["instance"] == f"{MENU}/3"
    assert answers[3][1]["x-request-id"] == "r-1"
    status, headers, old_body = old
    assert status == "HTTP/1.0 429 Too Many Requests"
    assert headers["ratelimit-policy"] == '"writes";q=1;w=60'
    assert json.loads(old_body)["status"] == 429
