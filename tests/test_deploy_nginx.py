"""End to end: the shipped nginx site (`deploy/nginx/presto.conf`) in front of two
`presto serve` processes on two ports and one PostgreSQL database, as two hosts would run;
and in front of one, where bad keys from one client must not lock out another.

nginx runs with a prefix and configuration of its own on free ports (never the machine's
configuration). Reads and a write go through nginx; the write is then read back from each
instance directly (the other instance learns of it through `NOTIFY`); then one instance
gets SIGTERM while 32 clients read through nginx, and not one request may fail.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from presto.config import Settings
from tests.helpers.ports import released_port
from tests.helpers.server_process import ServerProcess, running_presto
from tests.helpers.waiting import wait_until
from tests.test_overload import bearer, create_key

SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "presto.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
MENU = "/restaurant/1/item"
CLIENTS = 32
# Seconds of load before and after the SIGTERM.
LOAD_BEFORE = 1.0
LOAD_AFTER = 2.5

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed"),
    pytest.mark.e2e,
    pytest.mark.slow,
]


def nginx_config(prefix: Path, port: int, upstreams: tuple[int, int]) -> Path:
    """The shipped site with this test's ports, inside a main configuration of its own."""
    site = SITE.read_text()
    site = site.replace("127.0.0.1:5005", f"127.0.0.1:{upstreams[0]}")
    site = site.replace("127.0.0.1:5006", f"127.0.0.1:{upstreams[1]}")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("listen [::]:80;", "")
    (prefix / "site.conf").write_text(site)
    temp = {name: prefix / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    # nginx started by root runs its workers as `nobody`, who could not read this prefix.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = f"""{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    include {prefix}/site.conf;
}}
"""
    config = prefix / "nginx.conf"
    config.write_text(main)
    return config


def serves_on(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> bool:
    """Wait until `process` accepts connections on the port; False if it ended first
    (the port was taken meanwhile)."""

    def serves_or_ended() -> str:
        if process.poll() is not None:
            return "ended"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return "serves"
        except OSError:
            return ""

    return wait_until(serves_or_ended, timeout, f"nothing listens on port {port}") == "serves"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[tuple[int, int]], int]]:
    """Starts nginx in front of two upstream ports; returns its port."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(upstreams: tuple[int, int]) -> int:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        # nginx cannot say which port it got: try ports the OS just handed out until one
        # is still free when nginx binds it.
        for _ in range(5):
            port = released_port()
            config = nginx_config(prefix, port, upstreams)
            assert NGINX is not None
            command = [NGINX, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
            checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
            assert checked.returncode == 0, checked.stderr
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
            processes.append(process)
            if serves_on(port, process):
                return port
        raise AssertionError("nginx found no free port in 5 tries")

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


@dataclass
class Client:
    """HTTP/1.1 to one port over a kept-alive connection."""

    port: int
    connection: http.client.HTTPConnection | None = None
    # The client's own address (any of 127.0.0.0/8 on Linux), so nginx sees clients apart.
    source: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if self.connection is None:
            source = None if self.source is None else (self.source, 0)
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=30, source_address=source
            )
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            data = response.read()
        except Exception:
            self.connection.close()
            self.connection = None
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
            self.connection = None
        return response.status, dict(response.getheaders()), data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def menu(self) -> list[dict[str, object]]:
        status, _headers, body = self.request("GET", MENU)
        assert status == 200
        items: list[dict[str, object]] = json.loads(body)
        return items


@dataclass
class Load:
    """Clients reading menus through nginx in a loop until told to stop."""

    port: int
    clients: int
    stop: threading.Event = field(default_factory=threading.Event)
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._read, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        return threads

    def _read(self) -> None:
        client = Client(self.port)
        while not self.stop.is_set():
            try:
                status, _headers, _body = client.request("GET", MENU)
            except Exception as exc:  # every failure is counted, none may happen
                outcome = f"{type(exc).__name__}: {exc}"
            else:
                outcome = "" if status == 200 else f"status {status}"
            with self.lock:
                if outcome:
                    self.failures.append(outcome)
                else:
                    self.answered += 1
        client.close()


# presto behind nginx takes the client's address from nginx's `X-Forwarded-For`.
BEHIND_NGINX = ("--trusted-proxies", "127.0.0.1")


def assert_logged_by_either(instances: tuple[ServerProcess, ...], pattern: str) -> None:
    """One of the instances logs a line matching `pattern` (access lines come in batches)."""
    wait_until(
        lambda: any(re.search(pattern, line) for instance in instances for line in instance.lines),
        5,
        f"no line matching {pattern!r}",
    )


def test_two_instances_behind_nginx(
    postgres_engine: Engine, tmp_path: Path, nginx: Callable[[tuple[int, int]], int]
) -> None:
    """Two hosts share a PostgreSQL database (SQLite has no NOTIFY between hosts)."""
    db_url = postgres_engine.url.render_as_string(hide_password=False)
    # The shared test database may hold an earlier test's rows: reset it whatever it holds.
    with (
        running_presto(db_url, tmp_path, *BEHIND_NGINX, "--force", key=True) as presto_a,
        running_presto(db_url, tmp_path, *BEHIND_NGINX, reset_db=False) as presto_b,
    ):
        first, second = presto_a.server, presto_b.server
        ports = (presto_a.port, presto_b.port)
        clients: list[Client] = []
        try:
            key = presto_a.key
            through_nginx = Client(nginx(ports))
            direct = [Client(ports[0]), Client(ports[1])]
            clients.extend([through_nginx, *direct])

            # Reads through nginx: gzip for clients that take it, the client's address logged.
            status, headers, body = through_nginx.request(
                "GET", MENU, headers={"Accept-Encoding": "gzip", "X-Forwarded-For": "203.0.113.7"}
            )
            assert (status, headers["Content-Encoding"]) == (200, "gzip")
            assert json.loads(gzip.decompress(body))[0]["name"] == "Classic Burger"
            assert_logged_by_either(
                (first, second), r'presto\.access: 203\.0\.113\.7 "GET /restaurant/1/item"'
            )
            # Both instances have the menu cached before the write.
            assert [client.menu()[0]["name"] for client in direct] == ["Classic Burger"] * 2

            status, _headers, body = through_nginx.request(
                "PATCH",
                "/restaurant/1/item/1",
                body=json.dumps({"name": "Deployed Burger"}).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            assert status == 200, body
            # No stale read on either instance: the one that did not write heard the NOTIFY.

            def names() -> list[object]:
                return [client.menu()[0]["name"] for client in direct]

            wait_until(lambda: names() == ["Deployed Burger"] * 2, 5, lambda: names())

            load = Load(through_nginx.port, CLIENTS)
            threads = load.run()
            time.sleep(LOAD_BEFORE)
            answered_before = load.answered
            first.terminate()
            assert first.wait(30) == 0
            time.sleep(LOAD_AFTER)
            load.stop.set()
            for thread in threads:
                thread.join(30)
            assert load.failures == []
            assert answered_before > CLIENTS
            assert load.answered > answered_before + CLIENTS
            print(f"{load.answered} reads through nginx, {answered_before} before the SIGTERM")
        finally:
            for client in clients:
                client.close()


def test_bad_keys_from_one_client_do_not_lock_out_another_behind_nginx(
    db_url: str, tmp_path: Path, nginx: Callable[[tuple[int, int]], int]
) -> None:
    """With the default failed-authentication limit, behind the shipped site: the client
    at 127.0.0.2 spends it with bad keys (claiming to be 127.0.0.3 in `X-Forwarded-For`,
    which nginx appends the real address to); the client at 127.0.0.3 still writes."""
    with running_presto(db_url, tmp_path, *BEHIND_NGINX) as presto:
        port = presto.port
        key = create_key(db_url)
        through_nginx = nginx((port, port))
        attacker = Client(through_nginx, source="127.0.0.2")
        writer = Client(through_nginx, source="127.0.0.3")
        limit = Settings().auth_failure_limit
        spoofed = {"X-Forwarded-For": "127.0.0.3", "Content-Type": "application/json"}
        bad = [
            attacker.request(
                "PATCH", f"{MENU}/1", b'{"price": 1}', {**spoofed, **bearer(f"presto_bad{n}")}
            )[0]
            for n in range(limit + 2)
        ]
        json_type = {"Content-Type": "application/json"}
        locked_out = attacker.request(
            "PATCH", f"{MENU}/1", b'{"price": 2}', bearer(key) | json_type
        )
        written = writer.request("PATCH", f"{MENU}/1", b'{"price": 3}', bearer(key) | json_type)
        attacker_read = attacker.request("GET", f"{MENU}/1", None, bearer("presto_bad"))
        for client in (attacker, writer):
            client.close()
    assert bad == [401] * limit + [429, 429]
    assert locked_out[0] == 429
    assert written[0] == 200, written[2]
    assert json.loads(written[2])["price"] == 3
    assert (attacker_read[0], json.loads(attacker_read[2])["price"]) == (200, 3)
