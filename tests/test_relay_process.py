"""The webhook relay's process: one per host beside the workers, restarted when it dies
(delivering what was written meanwhile), gone with `presto serve`."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from presto.storage.engine import make_engine, make_sessionmaker
from tests.helpers.data import add_key, bearer
from tests.helpers.http import request
from tests.helpers.server_process import ServerProcess, process_state, running_presto
from tests.helpers.waiting import wait_until
from tests.helpers.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

RELAY_STARTED = r"webhook relay started \(pid (\d+)\)"


def relay_pids(server: ServerProcess, count: int = 1) -> list[int]:
    lines = server.wait_for_line(RELAY_STARTED, count=count, timeout=20)
    return [int(re.findall(r"\d+", line)[-1]) for line in lines]


def test_one_relay_per_host_back_after_a_kill_and_delivering_what_came_meanwhile(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url, pool_size=1)
    with (
        Receiver() as receiver,
        running_presto(db_url, tmp_path, "--webhook-allow-private", workers=2) as presto,
    ):
        server, address = presto.server, presto.address
        try:
            [relay] = relay_pids(server)
            workers = {
                int(pid) for pid in re.findall(r"listening on \S+ \(pid (\d+)\)", server.output)
            }
            assert relay not in workers and relay != server.process.pid
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))
            body = {"url": receiver.url, "events": ["menu.updated"]}
            endpoint = request(address, "POST", "/restaurant/1/webhooks", body, admin)
            receiver.secrets = [endpoint.json()["secret"]]

            os.kill(relay, signal.SIGKILL)
            killed = time.monotonic()
            # A write while no relay runs: its wake-up goes to the dead one's queue.
            renamed = request(address, "PATCH", "/restaurant/1/item/1", {"name": "Mega"}, admin)
            [_, again] = relay_pids(server, count=2)
            back = time.monotonic() - killed

            assert renamed.status == 200
            [delivered] = receiver.wait_for(1)
            assert delivered.body["type"] == "menu.updated"
            assert delivered.body["data"]["restaurant_id"] == 1
            assert delivered.verified_with == (0,)
            assert back < 5 and again != relay
            [ended] = server.wait_for_line(rf"relay process {relay} ended with signal SIGKILL")
            assert "restarting in 0.5 s" in ended
            metrics = request(address, "GET", "/metrics").body.decode()
            assert 'presto_process_restarts_total{process="relay"} 1.0' in metrics
            assert request(address, "GET", "/readyz").status == 200
            assert process_state(relay) is None  # reaped: no zombie left behind

            server.process.kill()
            wait_until(
                lambda: process_state(again) in (None, "Z"), 10, "the relay outlived presto serve"
            )
        finally:
            engine.dispose()
    assert "Traceback" not in server.output
