#!/usr/bin/env bash
# The test command: install what is missing, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff";  python3 -m ruff check src tests
echo "== mypy";  python3 -m mypy
echo "== pytest"; python3 -m pytest -q "$@"
