#!/bin/sh
# A/B of the crash-safety bookkeeping on the data path (issue 15), one run, alternating.
#   A: this tree.
#   B: this tree without it: the worker loop's pause-checkpoint poll removed and the rings of
#      commit 098d76c (a producer/consumer waits for the earlier ones to publish, no EMPTY marks).
# Usage: scripts/ab_ownership.sh [PAIRS] [SCENARIO...]   (default: 4 pairs of `forward ring`)
# Prints one JSON line per result, tagged with its side; summarise with the python snippet in
# docs/reliability.md.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
pairs=${1:-4}
[ $# -gt 0 ] && shift
scenarios=${*:-forward ring}
b=/tmp/spp-ab-nobook
rm -rf "$b" && mkdir -p "$b"
git -C "$here" archive HEAD src | tar -x -C "$b"
git -C "$here" show 098d76c:src/spp/runtime/ringcore.py > "$b/src/spp/runtime/ringcore.py"
printf '\nEMPTY = -1\nCLAIM_WINDOW = 1024  # same pool layout as A\n' >> "$b/src/spp/runtime/ringcore.py"
sed -i '/if checkpoint.requested():/,+1d' "$b/src/spp/graph/worker.py"
grep -q "checkpoint.requested" "$b/src/spp/graph/worker.py" && { echo "B: checkpoint still there" >&2; exit 1; }
i=0
while [ "$i" -lt "$pairs" ]; do
    for side in A B; do
        src=$here/src; [ "$side" = B ] && src=$b/src
        # shellcheck disable=SC2086
        PYTHONPATH=$src NUMBA_CACHE_DIR=/tmp/numba-ab-$side python3 -m spp.bench $scenarios \
            --no-peer --seconds 2 --rounds 2 --json | sed "s/^{/{\"side\": \"$side\", /"
    done
    i=$((i + 1))
done
# the ring operations alone, one thread (no scheduling noise): best and median of 7 alternating runs
PYTHONPATH=$here/src NUMBA_CACHE_DIR=/tmp/numba-ab-A python3 "$here/scripts/ring_ab.py" \
    "$here/src/spp/runtime/ringcore.py" "$b/src/spp/runtime/ringcore.py"
