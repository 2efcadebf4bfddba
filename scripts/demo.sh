#!/usr/bin/env bash
# The demo command: install what is missing, then run `spp demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec spp demo "$@"
