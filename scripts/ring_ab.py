"""Ring enqueue+dequeue cost in one thread, alternating: argv[1] ringcore.py (new) vs argv[2] (old).

Run by scripts/ab_ownership.sh after the bench pairs.  One thread, so no scheduling
noise and no cache-line transfers: what each protocol costs in instructions.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np
from numba import njit


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def make(mod: ModuleType) -> Any:
    enq, deq = mod.ring_enqueue, mod.ring_dequeue

    @njit(nogil=True)  # type: ignore[misc]
    def loop(ctrl: np.ndarray, slots: np.ndarray, ids: np.ndarray, out: np.ndarray, n: int, burst: int) -> int:
        s = 0
        for _ in range(n):
            s += enq(ctrl, slots, ids, 0, burst)
            s += deq(ctrl, slots, out, 0, burst)
        return s

    return loop


def main() -> None:
    mods = {"new": load(sys.argv[1], "ring_new"), "old": load(sys.argv[2], "ring_old")}
    for burst in (32, 128):
        fns = {name: make(mod) for name, mod in mods.items()}
        res: dict[str, list[float]] = {name: [] for name in mods}
        for _ in range(7):
            for name in ("old", "new"):
                ctrl = np.zeros(32, np.int64)
                slots = np.full(1024, -1, np.int32)
                ids = np.arange(burst, dtype=np.int32)
                out = np.zeros(burst, np.int32)
                fns[name](ctrl, slots, ids, out, 10, burst)
                n = 200_000
                t = time.perf_counter()
                fns[name](ctrl, slots, ids, out, n, burst)
                res[name].append((time.perf_counter() - t) / n * 1e9)
        for name in ("old", "new"):
            v = sorted(res[name])
            print(f"burst {burst}: {name}: enqueue+dequeue best {v[0]:.1f} ns, median {v[3]:.1f} ns "
                  f"({v[0] / burst:.2f} ns per id)")


if __name__ == "__main__":
    main()
