"""Waiting for a condition in place of sleeping for a guessed while."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 30, what: str = "timed out", interval: float = 0.05
) -> T:
    """Call `condition` until it returns something true, and return that; fail with `what`
    when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(interval)
    return value
