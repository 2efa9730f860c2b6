#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine with Python 3.11 (the README's test command).
# Installs what is missing (apt + pip), lints, type-checks, then runs every test; the fixtures
# start and stop their own Tansu broker and clickhouse-server on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
bash scripts/install-deps.sh
"$PYTHON" -m ruff check pipeline tests
"$PYTHON" -m mypy pipeline
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
