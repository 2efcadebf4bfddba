#!/usr/bin/env bash
# The test command: install what is missing, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Namespaces, veth and TAP need root: elevate when we can, otherwise carry on
# (the demo then runs on null ports and root-only tests are skipped, each saying so).
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${SPP_NO_SUDO:-}" ]; then
    exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi
# The tests also drive real peers: dpdk-testpmd (vhost guest, bench peers) and a QEMU VM
# on vhost:0.  Installed from apt when missing (SPP_WITH_TESTPMD=0 / SPP_WITH_QEMU=0 to
# skip) and Debian's chromium for the topology page's browser test (SPP_WITH_CHROMIUM=0 to
# skip); a test whose peer is missing is skipped and says so.
SPP_WITH_TESTPMD="${SPP_WITH_TESTPMD:-1}" SPP_WITH_CHROMIUM="${SPP_WITH_CHROMIUM:-1}" bash scripts/setup.sh
if [ "${SPP_WITH_QEMU:-1}" = 1 ]; then
    bash scripts/install-qemu.sh || echo "QEMU was not installed: tests/vhost/test_qemu.py will be skipped"
fi
echo "== ruff";  python3 -m ruff check src tests
echo "== mypy";  python3 -m mypy
echo "== pytest"; python3 -m pytest -q "$@"
