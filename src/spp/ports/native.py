"""Compiled bodies of the in-memory drivers (null, ring), shared by the Python port
objects and by the compiled worker loop so both count exactly the same way."""

from __future__ import annotations

import numpy as np
from numba import njit

from spp.runtime import ringcore
from spp.runtime.dataplane import fresh, pool_free
from spp.runtime.stats import RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, stat_add

KIND_NONE = 0
KIND_NULL = 1
KIND_RING = 2
#: A vhost-user port (its compiled bodies are in :mod:`spp.ports.vhost_ring`; the
#: worker loop reaches guest memory through :meth:`spp.ports.vhost_port.VhostPort.native_view`).
KIND_VHOST = 3
#: A phy (AF_PACKET) port: its kernels are in :mod:`spp.ports.phy` (``phy_rx_at``/``phy_tx_at``); the
#: worker loop reaches its rings through :meth:`spp.ports.phy.PhyPort.native_view`.
KIND_PHY = 4
#: A tap port: kernels ``tap_rx_at``/``tap_tx_at`` in :mod:`spp.ports.tap`.
KIND_TAP = 5
#: A pcap port: kernels ``pcap_rx_at``/``pcap_tx_at`` in :mod:`spp.ports.pcap`.
KIND_PCAP = 6
#: A port without a compiled driver: the worker loop calls its Python ``_rx``/``_tx`` once per
#: burst (:mod:`spp.graph.pyhook`).
KIND_PY = 7

#: ``ctrl`` word marking a ring as created (between the producer head and tail lines).
RING_ACTIVE = 4


@njit(cache=True, nogil=True)
def burst_bytes(meta: np.ndarray, ids: np.ndarray, start: int, n: int) -> int:
    total = 0
    for i in range(n):
        total += meta[ids[start + i], 1]
    return total


@njit(cache=True, nogil=True)
def null_rx(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
            stats: np.ndarray, slot: int, out: np.ndarray, start: int, n: int, size: int) -> int:
    """A null source: ``n`` fresh buffers of ``size`` bytes (contents unspecified).

    Same result as :func:`pool_alloc` followed by setting length and input port, with
    each buffer's metadata row written once.
    """
    k = ringcore.ring_dequeue(pctrl, pslots, out, start, n)
    for i in range(k):
        fresh(refcnt, meta, out[start + i], size, slot)
    if k:
        row = stats[slot]
        stat_add(row, RX_PACKETS, k)
        stat_add(row, RX_BYTES, k * size)
    return k


@njit(cache=True, nogil=True)
def null_tx(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
            header: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, start: int, n: int) -> int:
    """A null sink: counts and frees everything (consumes ``ids[start:start+n]``)."""
    if n:
        row = stats[slot]
        stat_add(row, TX_PACKETS, n)
        stat_add(row, TX_BYTES, burst_bytes(meta, ids, start, n))
        pool_free(pctrl, pslots, refcnt, header, ids, start, n)
    return n


@njit(cache=True, nogil=True)
def ring_rx(ctrl: np.ndarray, slots: np.ndarray, meta: np.ndarray, stats: np.ndarray, slot: int,
            out: np.ndarray, start: int, n: int) -> int:
    k = ringcore.ring_dequeue(ctrl, slots, out, start, n)
    if k:
        row = stats[slot]
        stat_add(row, RX_PACKETS, k)
        stat_add(row, RX_BYTES, burst_bytes(meta, out, start, k))
    return k


@njit(cache=True, nogil=True)
def ring_tx(ctrl: np.ndarray, slots: np.ndarray, meta: np.ndarray, stats: np.ndarray, slot: int,
            ids: np.ndarray, start: int, n: int) -> int:
    nbytes = burst_bytes(meta, ids, start, n)
    k = ringcore.ring_enqueue(ctrl, slots, ids, start, n)
    if k:
        if k < n:
            nbytes = burst_bytes(meta, ids, start, k)
        row = stats[slot]
        stat_add(row, TX_PACKETS, k)
        stat_add(row, TX_BYTES, nbytes)
    return k
