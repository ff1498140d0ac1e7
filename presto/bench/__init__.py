"""The benchmark harness: `python -m presto.bench` (`./bin/bench.sh`).

It starts every server it measures as a subprocess on a free 127.0.0.1 port, drives load
with wrk (or a small aiohttp client when wrk is missing), and prints one table: presto's
warm menu call beside a bare aiohttp ceiling and Flask under gunicorn, the cold path of a
large menu, and a mixed read/write load that counts stale reads.

An entry point: may import any layer of presto (it builds menus with `presto.storage` and
runs `presto serve`); nothing in presto imports it.
"""
