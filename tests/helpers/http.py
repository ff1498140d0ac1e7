"""A real `presto serve` with options, and plain HTTP requests to it, for end-to-end tests."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helpers.server_process import ServerProcess


@dataclass(frozen=True)
class Answer:
    """A response read whole: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    address: tuple[str, int],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request over a connection of its own; a `body` is sent as JSON."""
    headers = dict(headers or {})
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return Answer(
        response.status, {name.lower(): value for name, value in response.getheaders()}, data
    )


@contextlib.contextmanager
def running_presto(db_url: str, cwd: Path, *options: str) -> Iterator[tuple[str, int]]:
    """`presto serve` (one worker, demo menus, a free port) with `options`; its address."""
    server = ServerProcess(
        "--port", "0", "--database-url", db_url, "--reset-db", *options, cwd=cwd
    )  # fmt: skip
    try:
        yield server.wait_until_listening()
    finally:
        server.stop()
