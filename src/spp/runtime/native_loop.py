"""The compiled worker loop for plans made only of forward/merge over null and ring ports.

Python costs microseconds per call, so a worker whose every port is in memory runs
many bursts inside this function between control checks.  It counts exactly as the
Python port objects do (it calls the same compiled driver bodies).

Transmit is buffered per component (one tx port each): a buffer is sent when it
holds ``burst`` frames or when a whole pass over the components received nothing,
and always before the function returns, so no frame waits across calls.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from spp.ports.native import KIND_NULL, KIND_RING, null_rx, null_tx, ring_rx, ring_tx
from spp.runtime.dataplane import pool_free
from spp.runtime.stats import stat_add


@njit(cache=True, nogil=True)
def _flush(c: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
           header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
           tx_kind: np.ndarray, tx_arg: np.ndarray, tx_slot: np.ndarray, txbuf: np.ndarray,
           txcnt: np.ndarray, ring_full: int, tx_full: int) -> None:
    n = txcnt[c]
    if n == 0:
        return
    kind = tx_kind[c]
    row = txbuf[c]
    if kind == KIND_NULL:
        k = null_tx(pctrl, pslots, refcnt, meta, header, stats, tx_slot[c], row, 0, n)
        reason = tx_full
    else:
        r = tx_arg[c]
        k = ring_tx(ring_ctrl[r], ring_slots[r], meta, stats, tx_slot[c], row, 0, n)
        reason = ring_full
    if k < n:
        stat_add(stats[tx_slot[c]], reason, n - k)
        pool_free(pctrl, pslots, refcnt, header, row, k, n - k)
    txcnt[c] = 0


@njit(cache=True, nogil=True)
def native_run(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
               header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
               n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray, rx_slot: np.ndarray,
               tx_kind: np.ndarray, tx_arg: np.ndarray, tx_slot: np.ndarray, txbuf: np.ndarray,
               txcnt: np.ndarray, iters: int, burst: int, ring_full: int, tx_full: int) -> int:
    """Run ``iters`` passes over the components; return frames received."""
    ncomp = n_rx.shape[0]
    cap = txbuf.shape[1]
    total = 0
    for _ in range(iters):
        got = 0
        for c in range(ncomp):
            for r in range(n_rx[c]):
                cnt = txcnt[c]
                room = cap - cnt
                room = min(room, burst)
                kind = rx_kind[c, r]
                if kind == KIND_NULL:
                    k = null_rx(pctrl, pslots, refcnt, meta, stats, rx_slot[c, r], txbuf[c], cnt, room,
                                rx_arg[c, r])
                elif kind == KIND_RING:
                    a = rx_arg[c, r]
                    k = ring_rx(ring_ctrl[a], ring_slots[a], meta, stats, rx_slot[c, r], txbuf[c], cnt, room)
                else:
                    k = 0
                txcnt[c] = cnt + k
                got += k
                if txcnt[c] >= burst:
                    _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, stats, tx_kind,
                           tx_arg, tx_slot, txbuf, txcnt, ring_full, tx_full)
        total += got
        if got == 0:
            for c in range(ncomp):
                _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, stats, tx_kind,
                       tx_arg, tx_slot, txbuf, txcnt, ring_full, tx_full)
    for c in range(ncomp):
        _flush(c, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, stats, tx_kind, tx_arg,
               tx_slot, txbuf, txcnt, ring_full, tx_full)
    return total
