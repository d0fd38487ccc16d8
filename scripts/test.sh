#!/usr/bin/env bash
# Quick start 2: install voronka with its test tools and run the whole test suite.
# PostgreSQL tests use VORONKA_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
# and skip, saying why, when no server answers — unless VORONKA_REQUIRE_POSTGRES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec .venv/bin/python -m pytest "$@"
