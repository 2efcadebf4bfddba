"""Compiled multi-producer / multi-consumer ring of buffer ids (DPDK ``rte_ring`` style).

A ring is two arrays: ``ctrl`` (int64, 32 elements, see the ``P_*``/``C_*`` offsets;
producer and consumer indices sit on different cache lines) and ``slots`` (int32,
a power-of-two length).  Indices are 64-bit and never wrap, so the fill level is
simply ``prod_tail - cons_tail``.

Producers reserve room by compare-and-swap on ``prod_head``, write their slots,
wait for earlier producers to publish, then publish by moving ``prod_tail``.
Consumers do the same on the consumer side.  Several processes may enqueue or
dequeue on the same ring at once.  Nothing ever blocks on a full or empty ring:
the functions move as many ids as fit and return that count.

The packet pool's free list is one of these rings too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spp.runtime.atomics import atomic_cas, load_acquire, store_release

P_HEAD = 0
P_TAIL = 8
C_HEAD = 16
C_TAIL = 24
CTRL_LEN = 32


@njit(cache=True, nogil=True)
def ring_enqueue(ctrl: np.ndarray, slots: np.ndarray, ids: np.ndarray, start: int, n: int) -> int:
    """Enqueue ``ids[start:start+n]``; return how many were taken (0..n), in order."""
    size = slots.shape[0]
    mask = size - 1
    while True:
        head = load_acquire(ctrl, P_HEAD)
        ctail = load_acquire(ctrl, C_TAIL)
        k: int = size - (head - ctail)
        k = min(k, n)
        if k <= 0:
            return 0
        if atomic_cas(ctrl, P_HEAD, head, head + k) == head:
            break
    for i in range(k):
        slots[(head + i) & mask] = ids[start + i]
    while load_acquire(ctrl, P_TAIL) != head:
        pass
    store_release(ctrl, P_TAIL, head + k)
    return k


@njit(cache=True, nogil=True)
def ring_dequeue(ctrl: np.ndarray, slots: np.ndarray, out: np.ndarray, start: int, n: int) -> int:
    """Dequeue up to ``n`` ids into ``out[start:]``; return how many."""
    size = slots.shape[0]
    mask = size - 1
    while True:
        head = load_acquire(ctrl, C_HEAD)
        ptail = load_acquire(ctrl, P_TAIL)
        k = ptail - head
        k = min(k, n)
        if k <= 0:
            return 0
        if atomic_cas(ctrl, C_HEAD, head, head + k) == head:
            break
    for i in range(k):
        out[start + i] = slots[(head + i) & mask]
    while load_acquire(ctrl, C_TAIL) != head:
        pass
    store_release(ctrl, C_TAIL, head + k)
    return k


@njit(cache=True, nogil=True)
def ring_count(ctrl: np.ndarray) -> int:
    """Ids currently in the ring (a snapshot)."""
    return load_acquire(ctrl, P_TAIL) - load_acquire(ctrl, C_TAIL)
