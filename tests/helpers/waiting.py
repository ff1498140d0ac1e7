"""Waiting for a condition in place of sleeping for a guessed while."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | Literal[False] | None],
    timeout: float = 30,
    what: str | Callable[[], object] = "timed out",
    interval: float = 0.05,
) -> T:
    """Call `condition` every `interval` seconds until it returns something true, and
    return that; fail with `what` (or what it returns, when it is a function: the state
    at the time) when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(what() if callable(what) else what)
        time.sleep(interval)
    return value  # true: neither False nor None
