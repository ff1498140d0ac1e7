#!/usr/bin/env bash
# Runs the presto server: ./bin/run.sh [--reset-db] [--port 5005] [--workers 2] ...
# Creates .venv and installs the pinned requirements on first use.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh" requirements.txt
# exec, so that SIGINT/SIGTERM reach the server itself.
exec "$VENV/bin/presto" serve "$@"
