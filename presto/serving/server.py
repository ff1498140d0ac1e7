"""The HTTP server of `presto serve`, in parts along uvicorn's lines:

- `presto.serving.handler`: the request handler (request ids, CORS preflights, `/healthz`
  and `/metrics` on the event loop, the warm path, admission and the WSGI app);
- `presto.serving.worker`: worker assembly (the Flask app, its database, the warm path,
  admission and aiohttp's low-level server of one worker process);
- `presto.serving.lifecycle`: one worker's life (bind, serve, drain and close down);
- `presto.serving.supervisor`: the main process (worker processes, a shared port, the
  publisher process, the metrics directory);
- `presto.serving.log_setup`: the log set-up of every process.

This module names their entry points, for the CLI and the benchmark.
"""

from __future__ import annotations

from presto.serving.lifecycle import run_worker, serve
from presto.serving.log_setup import configure_logging
from presto.serving.supervisor import reserved_port, run, supervise
from presto.serving.worker import build_worker

__all__ = [
    "build_worker",
    "configure_logging",
    "reserved_port",
    "run",
    "run_worker",
    "serve",
    "supervise",
]
