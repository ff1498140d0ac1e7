"""End to end: a path or header the WSGI environ used to choke on reaches Flask and gets
its answer as a problem document, never a 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from presto.serving.wsgi_environ import latin1_native
from tests.helpers.server_process import running_presto


@pytest.fixture
def address(db_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A one-worker server with the demo menus, and its address."""
    with running_presto(db_url, tmp_path) as presto:
        yield presto.address


def raw_request(address: tuple[str, int], head: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (request line and headers, bytes as they are) and read the response."""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(head + b"Connection: close\r\n\r\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    header_block, _, body = data.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.e2e
def test_a_path_outside_latin_1_is_404(address: tuple[str, int]) -> None:
    status, headers, body = raw_request(
        address, b"DELETE /restaurant/Li%F4%84%B7%9D%C3%A4o HTTP/1.1\r\nHost: x\r\n"
    )
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 404
    assert problem["instance"] == "/restaurant/Li\U00104ddd\u00e4o"


@pytest.mark.e2e
def test_a_header_outside_latin_1_is_read_as_its_bytes(address: tuple[str, int]) -> None:
    key = "Bearer \u20ac\U0001f354".encode()
    status, headers, body = raw_request(
        address,
        b"POST /restaurant HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nAuthorization: "
        + key
        + b"\r\n",
    )
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["detail"] == "The API key is unknown or revoked."


@pytest.mark.e2e
def test_invalid_utf8_in_a_header_is_read_as_its_bytes(address: tuple[str, int]) -> None:
    status, headers, _ = raw_request(
        address, b"GET /restaurant/1/item HTTP/1.1\r\nHost: x\r\nIf-None-Match: \xff\xfe\r\n"
    )
    assert status == 200
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("text", "native"),
    [
        ("/restaurant/1", "/restaurant/1"),
        ("/caf\u00e9", "/caf\u00c3\u00a9"),
        ("\U00104ddd", "\u00f4\u0084\u00b7\u009d"),
        ("\udcff", "\u00ff"),  # an undecodable byte aiohttp kept as a surrogate
        ("\ud800", "\u00ed\u00a0\u0080"),
    ],
)
def test_latin1_native_gives_back_the_bytes_sent(text: str, native: str) -> None:
    assert latin1_native(text) == native
