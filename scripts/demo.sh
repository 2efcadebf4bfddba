#!/usr/bin/env bash
# The demo command: install what is missing, then run `spp demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# Namespaces, veth and TAP need root: elevate when we can, otherwise carry on
# (the demo then runs on null ports and root-only tests are skipped, each saying so).
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${SPP_NO_SUDO:-}" ]; then
    exec sudo -E env "PATH=$PATH" bash "$0" "$@"
fi
bash scripts/setup.sh
exec spp demo "$@"
