#!/usr/bin/env bash
# Runs the test suite: ./bin/test.sh [pytest arguments]
# Set PRESTO_TEST_DATABASE_URL to a PostgreSQL URL to run every test on it as well.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh" requirements-dev.txt
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
