"""The common end of the kernel/file drivers' compiled burst loops (phy, tap, pcap).

Every compiled ``rx`` loop ends the same way: the fresh buffers it allocated but did
not fill go back to the pool, and the burst's counters are published on the port's
shared stats row; every compiled ``tx`` loop publishes its counters and frees the
accepted prefix.  The drop reasons the drivers count besides ``runt`` differ, so the
helpers take up to two ``(reason, count)`` pairs; a zero count adds nothing (see
:func:`spp.runtime.stats.stat_add`).

These run once per burst, not per frame; they are inlined into the compiled callers
(``inline="always"``), so the generated code is what the drivers had when each wrote its
own tail, with the reason columns folded to constants.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit

from spp.runtime.dataplane import ETHER_MIN, pool_free
from spp.runtime.stats import REASON, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, stat_add

_RUNT: Final = REASON["runt"]
#: :func:`tx_fits` verdicts.
TX_OK, TX_RUNT, TX_TOO_LONG = 0, 1, 2


@njit(cache=True, nogil=True, inline="always")
def tx_fits(data: np.ndarray, meta: np.ndarray, b: int, mtu: int, room: int) -> int:
    """Whether an interface can send buffer ``b``: :data:`TX_RUNT` below 60 bytes,
    :data:`TX_TOO_LONG` past the MTU (plus the Ethernet header, plus 4 for a VLAN tag) or
    past ``room`` (the driver's slot), else :data:`TX_OK`.  The phy drivers' one check."""
    off = meta[b, 0]
    ln = meta[b, 1]
    if ln < ETHER_MIN:
        return TX_RUNT
    limit = mtu + 14
    if data[b, off + 12] == 0x81 and data[b, off + 13] == 0x00:
        limit += 4
    if ln > limit or ln > room:
        return TX_TOO_LONG
    return TX_OK


@njit(cache=True, nogil=True, inline="always")
def rx_burst_tail(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
                  out: np.ndarray, got: int, k: int, row: np.ndarray, nbytes: int, runt: int,
                  reason1: int, count1: int, reason2: int, count2: int) -> None:
    """Finish an rx burst that allocated ``out[:got]`` and filled ``out[:k]`` (``k <= got``).

    Frees ``out[k:got]`` (the slice is consumed as scratch, as :func:`pool_free` does),
    then adds ``k`` packets and ``nbytes`` bytes to ``row``'s rx counters and ``runt``,
    ``count1``, ``count2`` to the drop columns ``runt``, ``reason1``, ``reason2``.
    """
    if got > k:
        pool_free(pctrl, pslots, refcnt, header, out, k, got - k)  # unused fresh buffers go back
    if k:
        stat_add(row, RX_PACKETS, k)
        stat_add(row, RX_BYTES, nbytes)
    stat_add(row, _RUNT, runt)
    stat_add(row, reason1, count1)
    stat_add(row, reason2, count2)


@njit(cache=True, nogil=True, inline="always")
def tx_burst_tail(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
                  ids: np.ndarray, k: int, scratch: np.ndarray, row: np.ndarray, sent: int, nbytes: int,
                  runt: int, reason: int, count: int) -> None:
    """Finish a tx burst whose accepted prefix is ``ids[:k]``, of which ``sent`` went out.

    Adds ``sent`` packets and ``nbytes`` bytes to ``row``'s tx counters and ``runt``,
    ``count`` to the drop columns ``runt``, ``reason``; then frees ``ids[:k]`` through
    ``scratch`` (``len(scratch) >= k``), leaving ``ids`` itself intact.
    """
    if sent:
        stat_add(row, TX_PACKETS, sent)
        stat_add(row, TX_BYTES, nbytes)
    stat_add(row, _RUNT, runt)
    stat_add(row, reason, count)
    if k:
        for i in range(k):  # a loop, not a slice copy: callers compiled without numba's runtime inline this
            scratch[i] = ids[i]
        pool_free(pctrl, pslots, refcnt, header, scratch, 0, k)
