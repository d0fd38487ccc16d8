#!/usr/bin/env bash
# Quick start 1: install voronka and build the demo business in voronka.db (embedded SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/voronka demo "$@"
