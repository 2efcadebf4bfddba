#!/usr/bin/env bash
# The test command: install what is missing, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Namespaces, veth and TAP need root: elevate when we can, otherwise carry on
# (the demo then runs on null ports and root-only tests are skipped, each saying so).
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${SPP_NO_SUDO:-}" ]; then
    exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi
bash scripts/setup.sh
echo "== ruff";  python3 -m ruff check src tests
echo "== mypy";  python3 -m mypy
echo "== pytest"; python3 -m pytest -q "$@"
