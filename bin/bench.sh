#!/usr/bin/env bash
# Runs the benchmark harness: ./bin/bench.sh [--quick] [--cases a,b,c,d,e] [--duration 10] ...
# (./bin/bench.sh --help lists every option). Needs the test tools (gunicorn), so it
# installs requirements-dev.txt into .venv; wrk is used when installed (apt-get install wrk).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh" requirements-dev.txt
cd "$ROOT"
exec "$VENV/bin/python" -m presto.bench "$@"
