"""Helper processes are supervised: a killed publisher is reaped, logged, counted and back
within seconds, catches up on the menus it missed, and one that cannot stay up makes
`/readyz` say so."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import re
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import pytest

from presto.serving import supervision
from presto.serving.supervision import ProcessStates, Supervised
from presto.storage.engine import make_engine, make_sessionmaker
from tests.helpers.data import add_key, bearer
from tests.helpers.http import request
from tests.helpers.server_process import process_state, running_presto
from tests.helpers.waiting import wait_until
from tests.test_publishing import menu_version, stored

pytestmark = pytest.mark.slow

PUBLISHER_STARTED = r"publisher started \(pid (\d+)\)"


def exits_at_once(code: int) -> None:
    os._exit(code)


def test_a_process_that_keeps_dying_is_restarted_with_backoff_then_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervision, "FIRST_BACKOFF", 0.05)
    context = multiprocessing.get_context("spawn")
    states = ProcessStates(context)
    starts: list[float] = []

    def spawn(restarted: bool) -> BaseProcess:
        starts.append(time.monotonic())
        process = context.Process(target=exits_at_once, args=(3,), daemon=True)
        process.start()
        return process

    supervised = Supervised("publisher", spawn, states)
    supervised.start()
    try:
        wait_until(lambda: states.failing() == ["publisher"], 30, "never reported failing")
    finally:
        supervised.stop()
    assert states.restarts("publisher") >= supervision.FAILING_AFTER - 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Each death in a row waits twice as long as the one before.
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2


@pytest.mark.e2e
def test_a_killed_publisher_is_back_within_seconds_and_catches_up(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url, pool_size=1)
    try:
        with running_presto(db_url, tmp_path, workers=2) as presto:
            address, server = presto.address, presto.server
            [first] = server.wait_for_line(PUBLISHER_STARTED)
            publisher = int(re.findall(r"\d+", first)[-1])
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))

            os.kill(publisher, signal.SIGKILL)
            killed = time.monotonic()
            # A write while no publisher runs: its change goes to the dead one's queue.
            renamed = request(address, "PATCH", "/restaurant/1/item/1", {"name": "Mega"}, admin)
            server.wait_for_line(PUBLISHER_STARTED, count=2, timeout=10)
            back = time.monotonic() - killed

            assert renamed.status == 200
            [ended] = server.wait_for_line(
                rf"publisher process {publisher} ended with signal SIGKILL"
            )
            assert "restarting in 0.5 s" in ended
            assert back < 5
            wait_until(
                lambda: (
                    (row := stored(engine, 1)) is not None
                    and row.menu_version == menu_version(engine, 1)
                ),
                20,
                "the restarted publisher did not publish the menu changed meanwhile",
            )
            metrics = request(address, "GET", "/metrics").body.decode()
            assert 'presto_process_restarts_total{process="publisher"} 1.0' in metrics
            assert request(address, "GET", "/readyz").status == 200
            assert process_state(publisher) is None  # reaped: no zombie left behind
    finally:
        engine.dispose()
    assert "Traceback" not in server.output


@pytest.mark.e2e
def test_a_publisher_ends_with_presto_serve_even_when_it_is_killed(
    db_url: str, tmp_path: Path
) -> None:
    """The publisher is forked by a fork server, not by `presto serve`, yet it watches
    `presto serve` itself: killed outright, it leaves no publisher behind."""
    with running_presto(db_url, tmp_path, workers=2) as presto:
        server = presto.server
        [first] = server.wait_for_line(PUBLISHER_STARTED)
        publisher = int(re.findall(r"\d+", first)[-1])
        assert process_state(publisher) not in (None, "Z")
        server.process.kill()
        wait_until(
            lambda: process_state(publisher) in (None, "Z"),
            10,
            "the publisher outlived the presto serve that started it",
        )
