"""Compiled multi-producer / multi-consumer ring of buffer ids (DPDK ``rte_ring`` style).

A ring is two arrays: ``ctrl`` (int64, 32 elements, see the ``P_*``/``C_*`` offsets;
producer and consumer indices sit on different cache lines) and ``slots`` (int32,
a power-of-two length).  Indices are 64-bit and never wrap, so the fill level is
simply ``prod_tail - cons_tail``.

Producers reserve room by compare-and-swap on ``prod_head``, write their slots and
publish by moving ``prod_tail``; consumers do the same on the consumer side.
Several processes may enqueue or dequeue on the same ring at once.  Nothing ever
blocks on a full or empty ring: the functions move as many ids as fit and return
that count.

**Nobody waits for anybody, so a process killed mid-operation never stalls a ring.**
A slot nobody holds is ``EMPTY`` (-1); ids are >= 0.  A producer writes its ids into
its reserved slots; a consumer copies its ids out and writes ``EMPTY`` back.  Then
either moves its tail over *every* finished slot it finds from the current tail on
(its own and those of later operations that finished first) and returns: it never
waits for an earlier operation to finish.  The earlier one, when it finishes, moves
the tail over everything finished behind it.  (Each side does one locked
compare-and-swap between writing its slots and reading the others', a full barrier
on x86, so of two operations finishing at the same moment at least one sees the
other's slots.)  A slot is "finished" for producers when it is no longer ``EMPTY``
and for consumers when it is ``EMPTY`` again, which the window arithmetic makes
unambiguous (a producer's reserved slots were emptied by their consumers before the
consumer tail passed them).

A process killed between its reservation and its tail move therefore leaves only
its own unfinished slots behind: the tail stops there (consumers see nothing past
it, or at most ``CLAIM_WINDOW`` entries; producers see the ring fill up and count
``ring_full``; the pool looks empty, or full to nobody: see ``CLAIM_WINDOW``) but every live process
keeps running, so the world can be stopped (:mod:`spp.runtime.pause`) and
:func:`recover` run: ids the dead producer wrote are published, slots it had not
written are dropped (counted), ids a dead consumer had reserved go back to the ring
(it died before returning them to anybody).

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
#: A slot that holds no id.
EMPTY = -1
#: Most entries consumers may hold reserved past the consumer tail (``C_HEAD - C_TAIL``).  A
#: consumer stopped or killed mid-dequeue holds the tail back, and producers see the ring that
#: much fuller; the bound keeps live consumers from growing that without limit, which matters
#: for the pool: its ring has ``CLAIM_WINDOW`` slots more than buffers, so a free always fits.
CLAIM_WINDOW = 1024


@njit(cache=True, nogil=True)
def _advance(ctrl: np.ndarray, slots: np.ndarray, tail: int, head: int, mine: int, end: int,
             consumer: bool) -> None:
    """Publish: move ``ctrl[tail]`` over every finished slot (own claim ``[mine, end)`` is finished)."""
    mask = slots.shape[0] - 1
    # Fast path: at the front, publish the own claim in one step.  Locked, so also the full
    # barrier between writing our slots and reading the others'.
    t = atomic_cas(ctrl, tail, mine, end)
    if t == mine:
        t = end
    while True:
        h = load_acquire(ctrl, head)
        j = t
        if consumer:
            while j < h and load_acquire(slots, j & mask) == EMPTY:
                j += 1
        else:
            while j < h and load_acquire(slots, j & mask) != EMPTY:
                j += 1
        if j == t:
            return  # the slot at the tail is still someone's: they publish when they finish
        old = atomic_cas(ctrl, tail, t, j)
        t = j if old == t else old


@njit(cache=True, nogil=True)
def ring_enqueue(ctrl: np.ndarray, slots: np.ndarray, ids: np.ndarray, start: int, n: int) -> int:
    """Enqueue ``ids[start:start+n]`` (each >= 0); return how many were taken (0..n), in order."""
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
    _advance(ctrl, slots, P_TAIL, P_HEAD, head, head + k, False)
    return k


@njit(cache=True, nogil=True)
def ring_dequeue(ctrl: np.ndarray, slots: np.ndarray, out: np.ndarray, start: int, n: int) -> int:
    """Dequeue up to ``n`` ids into ``out[start:]``; return how many.

    One claim takes at most ``CLAIM_WINDOW`` entries past the consumer tail; a request
    for more (``Dataplane.alloc`` of a big batch) claims again once its first claim is
    finished, so only a stuck (dead) consumer ever makes it return less than is there.
    """
    size = slots.shape[0]
    mask = size - 1
    got = 0
    while got < n:
        limited = False
        while True:
            head = load_acquire(ctrl, C_HEAD)
            ptail = load_acquire(ctrl, P_TAIL)
            k = min(ptail - head, n - got)
            win = load_acquire(ctrl, C_TAIL) + CLAIM_WINDOW - head
            limited = win < k
            if limited:
                k = win
            if k <= 0:
                return got
            if atomic_cas(ctrl, C_HEAD, head, head + k) == head:
                break
        for i in range(k):
            j = (head + i) & mask
            out[start + got + i] = slots[j]
            slots[j] = EMPTY
        _advance(ctrl, slots, C_TAIL, C_HEAD, head, head + k, True)
        got += k
        if not limited:
            break
    return got


@njit(cache=True, nogil=True)
def ring_count(ctrl: np.ndarray) -> int:
    """Ids currently in the ring (a snapshot)."""
    return load_acquire(ctrl, P_TAIL) - load_acquire(ctrl, C_TAIL)


@njit(cache=True, nogil=True)
def recover(ctrl: np.ndarray, slots: np.ndarray) -> tuple[int, int]:
    """Close the operations dead processes left open on the ring; return (dropped, returned).

    Only with the world stopped: no live process may be inside an operation on this
    ring, so every unfinished slot is a dead process's.  Ids a dead producer wrote
    are published; slots it reserved but had not written are dropped (``dropped``:
    it died with those frames in its hands); ids a dead consumer reserved but had
    not emptied go back to the ring, in their place (``returned``).  The ring's
    contents are compacted so that afterwards nothing is reserved:
    ``C_TAIL == C_HEAD`` and ``P_TAIL == P_HEAD``.
    """
    mask = slots.shape[0] - 1
    ctail = ctrl[C_TAIL]
    chead = ctrl[C_HEAD]
    ptail = ctrl[P_TAIL]
    phead = ctrl[P_HEAD]
    if chead == ctail and phead == ptail:
        return 0, 0
    dropped = 0
    returned = 0
    w = ctail
    for i in range(ctail, phead):
        v = slots[i & mask]
        if v == EMPTY:
            if i >= ptail:
                dropped += 1  # reserved by a producer, never written
            continue  # (below chead: consumed)
        if i < chead:
            returned += 1
        slots[w & mask] = v
        w += 1
    for i in range(w, phead):
        slots[i & mask] = EMPTY
    ctrl[C_HEAD] = ctail
    store_release(ctrl, P_TAIL, w)
    ctrl[P_HEAD] = w
    return dropped, returned
