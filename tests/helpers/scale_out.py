"""presto instances for the scale-out tests: several `presto serve` processes on one
database, a key to write with, and what `/metrics` counts."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.http import Answer, request
from tests.helpers.server_process import Presto, ServerProcess, running_presto

MENU = "/restaurant/1/item"
# Options every instance gets: the tests write faster than the default per-key limit.
COMMON = ("--write-rate-limit", "0")


@dataclass
class Instance:
    """One `presto serve` (a "host"), its key for restaurant 1 and the statuses it gave."""

    presto: Presto
    statuses: list[int] = field(default_factory=list)

    @property
    def server(self) -> ServerProcess:
        return self.presto.server

    @property
    def key(self) -> str:
        return self.presto.key

    @property
    def address(self) -> tuple[str, int]:
        return self.presto.address

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
def instance(
    cwd: Path,
    database_url: str,
    *options: str,
    workers: int = 2,
    reset_db: bool = False,
    key: bool = False,
    key_database_url: str | None = None,
) -> Iterator[Instance]:
    """`running_presto` with `--workers N`, the options every instance gets and `options`,
    until the block ends (see there for the rest)."""
    with running_presto(
        database_url, cwd, *COMMON, *options,
        workers=workers, reset_db=reset_db, key=key, key_database_url=key_database_url,
    ) as presto:  # fmt: skip
        yield Instance(presto)


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
