"""CORS in a real browser: headless Chromium loads a page from one local origin that calls
presto on another with `fetch`, reading a menu and writing with a key.

From an origin in `--cors-origins` both succeed; from any other the read succeeds and the
browser refuses the write at its preflight, so the menu stays as it was. The test reads
each outcome from the page's DOM (`--dump-dom`).
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from presto.storage.engine import make_engine
from tests.helpers.server_process import running_presto

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Lets the page's fetches finish before the DOM is dumped.
    "--virtual-time-budget=15000",
]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
    pytest.mark.e2e,
    pytest.mark.slow,
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>menu front end</title></head>
<body><pre id="result">pending</pre>
<script>
(async () => {
  const api = "__API__";
  const out = {};
  try {
    const read = await fetch(api + "/restaurant/1/item");
    out.read_status = read.status;
    out.etag = read.headers.get("ETag");
    out.first = (await read.json())[0].name;
  } catch (error) { out.read_error = String(error); }
  try {
    const write = await fetch(api + "/restaurant/1/item/1", {
      method: "PATCH",
      headers: {"Authorization": "Bearer __KEY__", "Content-Type": "application/json"},
      body: JSON.stringify({name: "Browser Burger"}),
    });
    out.write_status = write.status;
    out.written = (await write.json()).name;
  } catch (error) { out.write_error = String(error); }
  document.getElementById("result").textContent = JSON.stringify(out);
})();
</script></body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[ThreadingHTTPServer]:
    """A static web server for the front end's page, on an origin of its own."""
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def origin_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def run_page(server: ThreadingHTTPServer, tmp_path: Path, api: str, key: str) -> dict[str, Any]:
    """Load the page in Chromium; the outcome the page wrote into its DOM."""
    (tmp_path / "site" / "index.html").write_text(
        PAGE.replace("__API__", api).replace("__KEY__", key)
    )
    profile = tmp_path / f"chromium-profile-{server.server_address[1]}"
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", origin_of(server) + "/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert match is not None, done.stdout + done.stderr
    assert match[1] != "pending", done.stderr
    outcome: dict[str, Any] = json.loads(html.unescape(match[1]))
    return outcome


def first_item_name(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SELECT name FROM item WHERE id = 1").scalar())
    finally:
        engine.dispose()


@pytest.fixture
def presto_for(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """Starts presto allowing writes from one origin; yields its URL and a key."""
    with contextlib.ExitStack() as started:

        def start(write_origin: str) -> tuple[str, str]:
            presto = started.enter_context(
                running_presto(db_url, tmp_path, "--cors-origins", write_origin, key=True)
            )
            return presto.url, presto.key

        yield start


def test_page_on_a_write_origin_reads_and_writes(
    presto_for: Any, page_server: ThreadingHTTPServer, tmp_path: Path, db_url: str
) -> None:
    api, key = presto_for(origin_of(page_server))

    outcome = run_page(page_server, tmp_path, api, key)

    assert outcome["read_status"] == 200
    assert outcome["first"] == "Classic Burger"
    assert outcome["etag"].startswith('"')  # exposed to the page
    assert (outcome["write_status"], outcome["written"]) == (200, "Browser Burger")
    assert first_item_name(db_url) == "Browser Burger"


def test_page_on_another_origin_reads_but_cannot_write(
    presto_for: Any, page_server: ThreadingHTTPServer, tmp_path: Path, db_url: str
) -> None:
    api, key = presto_for("http://admin.example.com")

    outcome = run_page(page_server, tmp_path, api, key)

    assert (outcome["read_status"], outcome["first"]) == (200, "Classic Burger")
    assert outcome["etag"].startswith('"')
    assert "write_status" not in outcome
    assert outcome["write_error"] == "TypeError: Failed to fetch"
    assert first_item_name(db_url) == "Classic Burger"
