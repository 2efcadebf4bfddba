"""The compiled worker loop for plans made only of forward/merge over null and ring ports.

Python costs microseconds per call, so a worker whose every port is in memory runs
many bursts inside this function between control checks.  It counts exactly what
the Python port objects count (``ports/native.py``): rx/tx packets and bytes per
port, and every frame a tx port refuses under ``ring_full``/``tx_full``.

Transmit is buffered per component (one tx port each): a buffer is sent when it
holds ``burst`` frames or when a whole pass over the components received nothing,
and always before the function returns, so no frame waits across calls.

Speed (see ``docs/performance.md``) comes from doing per call what the Python
drivers do per burst, without changing what anyone can observe once the call
returns:

* **Counters** are summed in local arrays and added to the shared ``stats`` rows
  (atomically) at the end of the call, and whenever a pass over the components
  receives nothing, instead of four atomics per burst.  Between calls the shared
  counters are exact; during a call they lag by at most the frames moved since the
  last idle pass (under full load one call: ``iters`` bursts, tens of microseconds).
* **A local buffer cache** (DPDK's per-lcore mempool cache): buffers whose last
  reference this loop drops go onto a small LIFO stack; the null source takes from
  it first and refills it from the shared pool ring in batches.  Recently used
  buffers stay in L1 and the pool ring is touched once per ``LC_REFILL`` buffers
  instead of twice per burst.  The cache is returned to the pool ring on an idle
  pass and before the call returns, so between calls the pool is whole and
  ``free_count`` exact.
  Reference counts are handled exactly as :func:`~spp.runtime.dataplane.pool_free`
  does (sole-owner fast path, atomic decrement otherwise, double frees counted).
* **One metadata write** per received null buffer (the fresh-buffer reset and the
  null driver's length/port are merged).
* **No runtime calls in the loop**: the loop is compiled without numba's reference
  counting (see :func:`_run_core`) and its helpers are inlined; with it, every array
  view and helper call cost an atomic increment/decrement pair (about 60% of the time).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from spp.ports.native import KIND_NULL, KIND_RING
from spp.runtime import ringcore
from spp.runtime.atomics import atomic_add
from spp.runtime.dataplane import H_DOUBLE_FREE, HEADROOM
from spp.runtime.stats import RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, stat_add

#: The local cache is trimmed back to ``LC_KEEP`` buffers when it grows past ``LC_CAP``.
LC_CAP = 512
LC_KEEP = 256
#: A refill takes at least this many buffers from the pool ring.
LC_REFILL = 128
#: numba option compiling a function without its reference-counting runtime.
_NO_NRT: dict[str, Any] = {"_nrt": False}


@njit(cache=True, nogil=True, inline="always")
def _free_to_cache(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
                   txbuf: np.ndarray, c: int, start: int, n: int, lc: np.ndarray, ln: int) -> int:
    """Drop one reference to each of ``txbuf[c, start:start+n]``; return the new cache fill.

    Buffers whose count reaches zero go onto the cache ``lc[:ln]``; the cache is trimmed
    into the pool ring when it passes ``LC_CAP``.  Same reference rules as ``pool_free``.
    """
    for i in range(n):
        b = txbuf[c, start + i]
        r = refcnt[b]
        if r == 1:
            refcnt[b] = 0
            lc[ln] = b
            ln += 1
        elif r <= 0:
            atomic_add(header, H_DOUBLE_FREE, 1)
        else:
            old = atomic_add(refcnt, b, -1)
            if old == 1:
                lc[ln] = b
                ln += 1
            elif old <= 0:
                atomic_add(refcnt, b, 1)
                atomic_add(header, H_DOUBLE_FREE, 1)
    if ln > LC_CAP:
        ringcore.ring_enqueue(pctrl, pslots, lc, LC_KEEP, ln - LC_KEEP)
        ln = LC_KEEP
    return ln


@njit(cache=True, nogil=True, inline="always")
def _row_bytes(meta: np.ndarray, txbuf: np.ndarray, c: int, start: int, n: int) -> int:
    total = 0
    for i in range(n):
        total += meta[txbuf[c, start + i], 1]
    return total


@njit(cache=True, nogil=True, inline="always")
def _flush(c: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
           header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray,
           tx_kind: np.ndarray, tx_arg: np.ndarray, txbuf: np.ndarray, txcnt: np.ndarray,
           txp: np.ndarray, txb: np.ndarray, txd: np.ndarray, lc: np.ndarray, ln: int) -> int:
    """Send component ``c``'s buffered frames; count locally; return the new cache fill."""
    n = txcnt[c]
    if n == 0:
        return ln
    txcnt[c] = 0
    if tx_kind[c] == KIND_NULL:
        txp[c] += n
        txb[c] += _row_bytes(meta, txbuf, c, 0, n)
        return _free_to_cache(pctrl, pslots, refcnt, header, txbuf, c, 0, n, lc, ln)
    r = tx_arg[c]
    k = ringcore.ring_enqueue(ring_ctrl[r], ring_slots[r], txbuf[c], 0, n)
    if k:
        txp[c] += k
        txb[c] += _row_bytes(meta, txbuf, c, 0, k)
    if k < n:
        txd[c] += n - k
        ln = _free_to_cache(pctrl, pslots, refcnt, header, txbuf, c, k, n - k, lc, ln)
    return ln


@njit(cache=True, nogil=True, inline="always")
def _settle(pctrl: np.ndarray, pslots: np.ndarray, stats: np.ndarray, n_rx: np.ndarray, rx_slot: np.ndarray,
            tx_kind: np.ndarray, tx_slot: np.ndarray, ring_full: int, tx_full: int, rxp: np.ndarray,
            rxb: np.ndarray, txp: np.ndarray, txb: np.ndarray, txd: np.ndarray, lc: np.ndarray, ln: int) -> None:
    """Return the cache ``lc[:ln]`` to the pool ring and add the local counts to ``stats`` (zeroing them)."""
    if ln:
        ringcore.ring_enqueue(pctrl, pslots, lc, 0, ln)
    for c in range(n_rx.shape[0]):
        for r in range(n_rx[c]):
            row = stats[rx_slot[c, r]]
            stat_add(row, RX_PACKETS, rxp[c, r])
            stat_add(row, RX_BYTES, rxb[c, r])
            rxp[c, r] = 0
            rxb[c, r] = 0
        row = stats[tx_slot[c]]
        stat_add(row, TX_PACKETS, txp[c])
        stat_add(row, TX_BYTES, txb[c])
        stat_add(row, ring_full if tx_kind[c] == KIND_RING else tx_full, txd[c])
        txp[c] = 0
        txb[c] = 0
        txd[c] = 0


@njit(cache=True, nogil=True, **_NO_NRT)
def _run_core(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
              header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
              n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray, rx_slot: np.ndarray,
              tx_kind: np.ndarray, tx_arg: np.ndarray, tx_slot: np.ndarray, txbuf: np.ndarray,
              txcnt: np.ndarray, iters: int, burst: int, ring_full: int, tx_full: int,
              rxp: np.ndarray, rxb: np.ndarray, txp: np.ndarray, txb: np.ndarray, txd: np.ndarray,
              lc: np.ndarray) -> int:
    """:func:`native_run` with its scratch arrays passed in (zeroed accumulators, cache room).

    Compiled without the numba runtime (``_nrt=False``): it allocates nothing, so no
    array view it makes (``txbuf[c]``, ``ring_ctrl[a]``) costs a reference-count
    round trip, and the helpers are inlined into one loop.
    """
    ncomp = n_rx.shape[0]
    cap = txbuf.shape[1]
    burst = min(burst, cap)
    ln = 0
    total = 0
    dirty = False
    for _ in range(iters):
        got = 0
        for c in range(ncomp):
            for r in range(n_rx[c]):
                cnt = txcnt[c]
                room = min(cap - cnt, burst)
                kind = rx_kind[c, r]
                k = 0
                if kind == KIND_NULL:
                    if ln < room:
                        ln += ringcore.ring_dequeue(pctrl, pslots, lc, ln, LC_REFILL + room - ln)
                    k = min(room, ln)
                    size = rx_arg[c, r]
                    slot = rx_slot[c, r]
                    for i in range(k):
                        b = lc[ln - 1 - i]
                        txbuf[c, cnt + i] = b
                        refcnt[b] = 1
                        meta[b, 0] = HEADROOM
                        meta[b, 1] = size
                        meta[b, 2] = slot
                        meta[b, 3] = -1
                        meta[b, 4] = 0
                        meta[b, 5] = 0
                        meta[b, 6] = -1
                    ln -= k
                    rxp[c, r] += k
                    rxb[c, r] += k * size
                elif kind == KIND_RING:
                    a = rx_arg[c, r]
                    k = ringcore.ring_dequeue(ring_ctrl[a], ring_slots[a], txbuf[c], cnt, room)
                    if k:
                        rxp[c, r] += k
                        rxb[c, r] += _row_bytes(meta, txbuf, c, cnt, k)
                txcnt[c] = cnt + k
                got += k
                if cnt + k >= burst:
                    ln = _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, tx_kind, tx_arg,
                                txbuf, txcnt, txp, txb, txd, lc, ln)
        total += got
        if got == 0:
            for c in range(ncomp):
                ln = _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, tx_kind, tx_arg,
                            txbuf, txcnt, txp, txb, txd, lc, ln)
            if dirty:  # idle: publish counters and give the cached buffers back now, not at the end
                _settle(pctrl, pslots, stats, n_rx, rx_slot, tx_kind, tx_slot, ring_full, tx_full, rxp, rxb, txp,
                        txb, txd, lc, ln)
                ln = 0
                dirty = False
        else:
            dirty = True
    for c in range(ncomp):
        ln = _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, tx_kind, tx_arg,
                    txbuf, txcnt, txp, txb, txd, lc, ln)
    _settle(pctrl, pslots, stats, n_rx, rx_slot, tx_kind, tx_slot, ring_full, tx_full, rxp, rxb, txp, txb, txd,
            lc, ln)
    return total


@njit(cache=True, nogil=True)
def native_run(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
               header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
               n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray, rx_slot: np.ndarray,
               tx_kind: np.ndarray, tx_arg: np.ndarray, tx_slot: np.ndarray, txbuf: np.ndarray,
               txcnt: np.ndarray, iters: int, burst: int, ring_full: int, tx_full: int) -> int:
    """Run ``iters`` passes over the components; return frames received.

    Component ``c`` receives from ``n_rx[c]`` ports (``rx_kind``/``rx_arg``/``rx_slot``
    rows: driver kind, null frame size or ring index, stats row) and sends to one
    (``tx_kind``/``tx_arg``/``tx_slot``).  ``txbuf[c, :txcnt[c]]`` holds its unsent
    frames.  On return every ``txcnt`` is 0, every counter is up to date and every
    free buffer is back in the pool ring.
    """
    ncomp = n_rx.shape[0]
    max_rx = rx_kind.shape[1]
    rxp = np.zeros((ncomp, max_rx), np.int64)
    rxb = np.zeros((ncomp, max_rx), np.int64)
    txp = np.zeros(ncomp, np.int64)
    txb = np.zeros(ncomp, np.int64)
    txd = np.zeros(ncomp, np.int64)
    lc = np.empty(LC_CAP + LC_REFILL + 2 * txbuf.shape[1], np.int32)
    total: int = _run_core(pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, stats, n_rx, rx_kind,
                           rx_arg, rx_slot, tx_kind, tx_arg, tx_slot, txbuf, txcnt, iters, burst, ring_full,
                           tx_full, rxp, rxb, txp, txb, txd, lc)
    return total
