"""The soak-and-chaos run, two minutes of it, on PostgreSQL: mixed load on every demo
menu while a worker and the publisher are killed and the database connections are ended;
no 5xx, no stale read, every killed process back.

The bound on coming back is looser here (`RECOVERY_SECONDS`) than the run's default of 5 s:
the load generator shares the two cores, and a new process's imports then take seconds of
waiting for a core (the publisher's took 5.7 s in a 30-minute run, a worker's 1.7 s); the
report prints each time, and `./bin/soak.sh` holds the 5 s bar."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
RECOVERY_SECONDS = 20


@pytest.mark.slow
def test_two_minutes_of_soak_and_chaos_pass(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the chaos ends database connections: PostgreSQL only")
    command = [sys.executable, "-m", "presto.bench.soak", "--minutes", "2"]
    command += ["--recovery-seconds", str(RECOVERY_SECONDS)]
    run = subprocess.run(
        [*command, "--database-url", db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert "5xx: 0" in run.stdout and "stale reads: 0" in run.stdout
    assert "worker back in" in run.stdout and "publisher back in" in run.stdout
