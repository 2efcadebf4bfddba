"""Grace periods (spp.runtime.quiesce) and arrays over raw addresses (spp.runtime.rawmem)."""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from spp.graph.worker import Worker
from spp.runtime import quiesce
from spp.runtime.dataplane import Dataplane
from spp.runtime.rawmem import raw_array


class _Stuck:
    """A worker that never passes a quiescent point."""

    loops = 7
    alive = True


def test_synchronize_waits_for_running_workers(dp: Dataplane) -> None:
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        assert quiesce.synchronize(timeout=30)
        before = w.loops
        assert quiesce.synchronize(timeout=30)
        assert w.loops >= before + 2
    finally:
        w.stop()
    assert quiesce.synchronize(timeout=0.01)  # a stopped worker is no longer waited for


def test_synchronize_gives_up_on_a_stuck_worker() -> None:
    stuck = _Stuck()
    t = threading.Thread(target=quiesce.register, args=(stuck,))  # registered from "its" thread
    t.start()
    t.join()
    try:
        assert not quiesce.synchronize(timeout=0.05)
    finally:
        quiesce.unregister(stuck)
    assert quiesce.synchronize(timeout=0.05)


def test_synchronize_skips_the_calling_worker() -> None:
    stuck = _Stuck()
    quiesce.register(stuck)  # this thread is now "the worker": it cannot wait for itself
    try:
        assert quiesce.synchronize(timeout=0.05)
    finally:
        quiesce.unregister(stuck)


@njit(cache=True, _nrt=False)
def _sum_and_poke(addr: int, n: int) -> int:
    a = raw_array(addr, n, np.uint16)
    total = 0
    for i in range(n):
        total += a[i]
    a[0] = 7
    wide = raw_array(addr, n // 4, np.int64)
    return total + int(wide.shape[0])


def test_raw_array_reads_and_writes_the_memory_at_an_address() -> None:
    x = np.arange(16, dtype=np.uint16)
    assert _sum_and_poke(x.ctypes.data, 16) == 120 + 4
    assert x[0] == 7
