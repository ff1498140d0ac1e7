"""A fake wall clock for tests whose answers depend on the time of day."""

from __future__ import annotations

import time
from datetime import datetime

import pytest


class FakeClock:
    """`time.time` (which presto's clock reads) at a chosen instant, moved by hand."""

    def __init__(self, start: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = start.timestamp()
        monkeypatch.setattr(time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()
