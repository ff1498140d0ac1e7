"""presto instances for the scale-out tests: several `presto serve` processes on one
database, a key to write with, and what `/metrics` counts."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from presto import cli
from tests.helpers.http import Answer, request
from tests.helpers.ports import released_port
from tests.helpers.server_process import ServerProcess

MENU = "/restaurant/1/item"
# Options every instance gets: the tests write faster than the default per-key limit.
COMMON = ("--write-rate-limit", "0")


@dataclass
class Instance:
    """One `presto serve` (a "host") and the key that writes to restaurant 1."""

    server: ServerProcess
    port: int
    key: str = ""
    statuses: list[int] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def get(self, path: str = MENU) -> Answer:
        answer = request(self.address, "GET", path)
        self.statuses.append(answer.status)
        return answer

    def set_price(self, item_id: int, price: int) -> Answer:
        headers = {"Authorization": f"Bearer {self.key}"}
        answer = request(self.address, "PATCH", f"{MENU}/{item_id}", {"price": price}, headers)
        self.statuses.append(answer.status)
        return answer

    def metric(self, name: str, **labels: str) -> float:
        """A sample's value in `/metrics` (0 when absent)."""
        text = request(self.address, "GET", "/metrics").body.decode()
        wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
        pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "")
        match = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0


@contextlib.contextmanager
def instance(cwd: Path, database_url: str, *options: str, workers: int = 2) -> Iterator[Instance]:
    """`presto serve --workers N` on a free port with `options`, until the block ends."""
    port = released_port()
    cwd.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        "--port", str(port), "--workers", str(workers), "--database-url", database_url,
        *COMMON, *options,
        cwd=cwd,
    )  # fmt: skip
    try:
        server.wait_for_line(r"presto listening", count=workers, timeout=60)
        yield Instance(server, port)
    finally:
        server.stop()


def create_key(database_url: str) -> str:
    """A key for restaurant 1, made with `presto keys create` in this process."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        status = cli.main(["keys", "create", "--restaurant", "1", "--database-url", database_url])
    assert status == 0
    return printed.getvalue().strip()


def prices(menu: list[dict[str, Any]], item_id: int) -> set[int]:
    """The price shown for `item_id` wherever it appears in a menu, nested ones too."""
    found: set[int] = set()
    stack = list(menu)
    while stack:
        item = stack.pop()
        if item["id"] == item_id:
            found.add(item["price"])
        stack.extend(item["modifiers"])
    return found
