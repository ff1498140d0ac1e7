#!/usr/bin/env bash
# Soak and chaos run: ./bin/soak.sh --minutes 30 --database-url postgresql+psycopg://...
# (./bin/soak.sh --help lists every option). The database is wiped (--reset-db).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh" requirements.txt
cd "$ROOT"
exec "$VENV/bin/python" -m presto.bench.soak "$@"
