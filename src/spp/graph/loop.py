"""The compiled worker loop: every plan a worker runs, composed of its parts' kernels.

Each port driver, component and port mirror has one compiled kernel beside its class
(``ports/``, ``components/``, ``mirror/``); this loop composes them, many bursts per
call.  What users write in Python (a driver, a component or a port callback without a
compiled body) is called from here once per burst (:mod:`spp.graph.pyhook`).

Python costs microseconds per call, so a worker whose every port is in memory runs
many bursts inside this function between control checks.  It counts exactly what
the Python port objects count (``ports/native.py``): rx/tx packets and bytes per
port, and every frame a tx port refuses under ``ring_full``/``tx_full``.

Transmit is buffered per tx row (a component's tx port): a buffer is sent when it
holds ``burst`` frames or when a whole pass over the components received nothing,
and always before the function returns, so no frame waits across calls.

A classifier's table is the packed array of :class:`~spp.components.classifier.ClassTable`
(published with the plan, so a table change is a plan change); lookups make exactly
the decisions of :func:`~spp.components.classifier.classify`, flood copies share the
buffer (reference count up), and ``runt``/``no_route`` drops are counted per
component.  A null source with templates copies them in turn into its frames.

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
from numba import njit, objmode

from spp.components.base import KERNEL_CLASSIFIER, KERNEL_FORWARD, KERNEL_MIRROR, KERNEL_PYTHON
from spp.components.classifier import classify_one
from spp.components.mirror import mirror_duplicate
from spp.components.vlan import OP_NONE, vlan_burst
from spp.graph.pyhook import call_hook
from spp.mirror.engine import MA_FULL, MA_TXB, MA_TXP, MI_COLS, MI_DSLOT, MI_SROW, STAT_COLS, run_mirrors
from spp.mirror.filters import N_PARAMS
from spp.ports.native import KIND_NULL, KIND_PCAP, KIND_PHY, KIND_PY, KIND_RING, KIND_TAP, KIND_VHOST
from spp.ports.pcap import PC_COLS, pcap_rx_at, pcap_tx_at
from spp.ports.phy import PH_COLS, phy_rx_at, phy_tx_at
from spp.ports.tap import TP_COLS, tap_rx_at, tap_tx_at
from spp.ports.vhost_port import VH_COLS as _VHOST_COLS
from spp.ports.vhost_port import vhost_rx_at, vhost_tx_at
from spp.runtime import ringcore
from spp.runtime.atomics import atomic_add
from spp.runtime.dataplane import HEADROOM, drop_ref, fresh
from spp.runtime.rawmem import raw_array
from spp.runtime.stats import N_FIELDS, REASON, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, stat_add

#: The local cache is trimmed back to ``LC_KEEP`` buffers when it grows past ``LC_CAP``.
LC_CAP = 512
LC_KEEP = 256
#: A refill takes at least this many buffers from the pool ring.
LC_REFILL = 128
#: numba option compiling a function without its reference-counting runtime.
_NO_NRT: dict[str, Any] = {"_nrt": False}
#: Component kernels (:class:`spp.components.base.Kernel`): forward/merge, classifier (``tab_off[c]``:
#: its packed table's offset in ``tabs``), spp_mirror's ``mirror`` (``tab_off[c]``: the address of its
#: copy-mode word, 1: deep), and a component in Python (``tab_off[c]``: its hook row).
CT_FORWARD = KERNEL_FORWARD
CT_CLASSIFIER = KERNEL_CLASSIFIER
CT_MIRROR = KERNEL_MIRROR
CT_PY = KERNEL_PYTHON
_MIRROR_NOMBUF = REASON["mirror_nombuf"]
_RUNT = REASON["runt"]
_MIRROR_FULL = REASON["mirror_full"]
#: Words of ``flags`` the loop sets for the worker: component drops were counted; a
#: vhost queue wants a call (interrupt) or turned broken.
F_CDROPS = 0
F_VHOST = 1
N_FLAGS = 4
#: Width of the ``vh`` table: one row per vhost (``VH_*`` columns), phy (``PH_*``) or tap (``TP_*``) port.
VH_COLS = 5
assert max(PH_COLS, TP_COLS, PC_COLS, _VHOST_COLS) <= VH_COLS  # phy, tap, pcap and vhost rows share vh
_LINK_DOWN = REASON["link_down"]
_NO_ROUTE = REASON["no_route"]
#: Columns of a tx row's ``tx_info``: its port mirrors (first in ``mlist``, count), its VLAN
#: operation (code of :mod:`spp.components.vlan`) and TCI.
TI_MOFF, TI_MN, TI_VOP, TI_TCI, TI_CBH, TI_KIND, TI_ARG, TI_SLOT = range(8)
TI_COLS = 8

@njit(cache=True, **_NO_NRT)  # no nogil: object mode takes the GIL for the call itself
def _py(pyh: np.ndarray, s: int, n: int) -> int:
    """Call hook row ``s`` (:mod:`spp.graph.pyhook`) on a burst of ``n`` in ``pyio[s]``; its result."""
    h = pyh[s]
    with objmode(m="int64"):
        m = call_hook(h, n)
    return m


@njit(cache=True, nogil=True, inline="always")
def _free_one(refcnt: np.ndarray, header: np.ndarray, b: int, lc: np.ndarray, ln: int) -> int:
    """Drop one reference to buffer ``b`` (:func:`drop_ref`); a last one puts it on the cache ``lc[:ln]``."""
    if drop_ref(refcnt, header, b):
        lc[ln] = b
        ln += 1
    return ln


@njit(cache=True, nogil=True, inline="always")
def _trim(pctrl: np.ndarray, pslots: np.ndarray, lc: np.ndarray, ln: int) -> int:
    """Give the cache back to the pool ring down to ``LC_KEEP`` when it passed ``LC_CAP``."""
    if ln > LC_CAP:
        ringcore.ring_enqueue(pctrl, pslots, lc, LC_KEEP, ln - LC_KEEP)
        ln = LC_KEEP
    return ln


@njit(cache=True, nogil=True, inline="always")
def _free_to_cache(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
                   txbuf: np.ndarray, c: int, start: int, n: int, lc: np.ndarray, ln: int) -> int:
    """Drop one reference to each of ``txbuf[c, start:start+n]``; return the new cache fill.

    Buffers whose count reaches zero go onto the cache ``lc[:ln]``; the cache is trimmed
    into the pool ring when it passes ``LC_CAP``.  Same reference rules as ``pool_free``.
    """
    for i in range(n):
        ln = _free_one(refcnt, header, txbuf[c, start + i], lc, ln)
    return _trim(pctrl, pslots, lc, ln)


@njit(cache=True, nogil=True, inline="always")
def _row_bytes(meta: np.ndarray, txbuf: np.ndarray, c: int, start: int, n: int) -> int:
    total = 0
    for i in range(n):
        total += meta[txbuf[c, start + i], 1]
    return total


@njit(cache=True, nogil=True, inline="always")
def _flush(t: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
           header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray,
           txbuf: np.ndarray, txcnt: np.ndarray,
           txp: np.ndarray, txb: np.ndarray, txd: np.ndarray, lc: np.ndarray, ln: int,
           data: np.ndarray, stats: np.ndarray, tx_info: np.ndarray, mlist: np.ndarray,
           minfo: np.ndarray, mparams: np.ndarray, mvlan: np.ndarray, macc: np.ndarray,
           msel: np.ndarray, vh: np.ndarray, flags: np.ndarray, pyh: np.ndarray,
           pyio: np.ndarray) -> int:
    """Send tx row ``t``'s buffered frames (after its port's mirrors); count locally; return the new cache fill.

    A vhost port counts its own tx (as its ``tx_burst`` does); a vhost port whose
    guest receive queue is not running takes the burst and counts it ``link_down``.
    """
    n = txcnt[t]
    if n == 0:
        return ln
    txcnt[t] = 0
    kind = tx_info[t, TI_KIND]
    arg = tx_info[t, TI_ARG]
    slot = tx_info[t, TI_SLOT]
    if tx_info[t, TI_VOP] != OP_NONE:  # before the mirrors, as a port's tx_burst sees the edited frames
        n = vlan_burst(pctrl, pslots, refcnt, meta, data, header, stats[slot], txbuf[t], n, tx_info[t, TI_VOP],
                       tx_info[t, TI_TCI], msel)
        if n == 0:
            return ln
    if tx_info[t, TI_CBH]:  # Python callbacks (they may keep a prefix and own the rest)
        s = tx_info[t, TI_CBH] - 1
        for i in range(n):
            pyio[s, i] = txbuf[t, i]
        n = _py(pyh, s, n)
        for i in range(n):
            txbuf[t, i] = pyio[s, i]
        if n <= 0:
            return ln
    if tx_info[t, TI_MN]:
        run_mirrors(tx_info[t, TI_MOFF], tx_info[t, TI_MN], mlist, minfo, mparams, mvlan, macc, msel, data, meta,
                    refcnt, pctrl, pslots, header, stats, ring_ctrl, ring_slots, txbuf[t], n, -1, vh)
    if kind == KIND_NULL:
        txp[t] += n
        txb[t] += _row_bytes(meta, txbuf, t, 0, n)
        return _free_to_cache(pctrl, pslots, refcnt, header, txbuf, t, 0, n, lc, ln)
    if kind >= KIND_VHOST:  # the driver's kernel counts its own tx
        if kind == KIND_VHOST:
            k = vhost_tx_at(vh, arg, pctrl, pslots, refcnt, meta, data, header, stats, slot, txbuf[t], n,
                            flags[F_VHOST:])
        elif kind == KIND_PHY:  # msel is free again once the mirrors ran: the kernel's scratch
            k = phy_tx_at(vh[arg], pctrl, pslots, refcnt, header, meta, data, stats, slot, txbuf[t], n,
                          msel)
        elif kind == KIND_TAP:
            k = tap_tx_at(vh[arg], pctrl, pslots, refcnt, header, meta, data, stats, slot, txbuf[t], n,
                          msel)
        elif kind == KIND_PCAP:
            k = pcap_tx_at(vh[arg], pctrl, pslots, refcnt, header, meta, data, stats, slot, txbuf[t], n, msel)
        else:  # a driver in Python (it counts its tx as its _tx does); -1: the port is closed
            s = arg
            for i in range(n):
                pyio[s, i] = txbuf[t, i]
            k = _py(pyh, s, n)
        if k < 0:  # the guest's receive queue is not running, the interface is not up
            stat_add(stats[slot], _LINK_DOWN, n)
            return _free_to_cache(pctrl, pslots, refcnt, header, txbuf, t, 0, n, lc, ln)
        if k < n:
            txd[t] += n - k
            ln = _free_to_cache(pctrl, pslots, refcnt, header, txbuf, t, k, n - k, lc, ln)
        return ln
    r = arg
    k = ringcore.ring_enqueue(ring_ctrl[r], ring_slots[r], txbuf[t], 0, n)
    if k:
        txp[t] += k
        txb[t] += _row_bytes(meta, txbuf, t, 0, k)
    if k < n:
        txd[t] += n - k
        ln = _free_to_cache(pctrl, pslots, refcnt, header, txbuf, t, k, n - k, lc, ln)
    return ln


@njit(cache=True, nogil=True, **_NO_NRT)
def _flush_rows(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray, header: np.ndarray,
                ring_ctrl: np.ndarray, ring_slots: np.ndarray, txbuf: np.ndarray, txcnt: np.ndarray, txp: np.ndarray,
                txb: np.ndarray, txd: np.ndarray,
                lc: np.ndarray, ln: int, data: np.ndarray, stats: np.ndarray, tx_info: np.ndarray, mlist: np.ndarray,
                minfo: np.ndarray, mparams: np.ndarray, mvlan: np.ndarray, macc: np.ndarray, msel: np.ndarray,
                vh: np.ndarray, flags: np.ndarray, pyh: np.ndarray, pyio: np.ndarray) -> int:
    """:func:`_flush` every tx row (an idle pass, the end of a call): a call, not inlined, so the
    loop's body holds one copy of ``_flush`` instead of three."""
    for t in range(tx_info.shape[0]):
        ln = _flush(t, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, txbuf, txcnt,
                    txp, txb, txd, lc, ln, data, stats, tx_info, mlist, minfo, mparams, mvlan, macc, msel, vh, flags,
                    pyh, pyio)
    return ln


@njit(cache=True, nogil=True, inline="always")
def _settle(pctrl: np.ndarray, pslots: np.ndarray, stats: np.ndarray, n_rx: np.ndarray, rx_slot: np.ndarray,
            tx_info: np.ndarray, ring_full: int, tx_full: int, rxp: np.ndarray,
            rxb: np.ndarray, txp: np.ndarray, txb: np.ndarray, txd: np.ndarray, lc: np.ndarray, ln: int,
            cdrops: np.ndarray, cdrops_acc: np.ndarray, minfo: np.ndarray, macc: np.ndarray, mtab: np.ndarray,
            flags: np.ndarray) -> None:
    """Return the cache ``lc[:ln]`` to the pool ring and add the local counts to ``stats`` (zeroing them).

    Component drops go from ``cdrops_acc`` (this call's scratch) to ``cdrops`` (the plan's
    row per component, which the worker adds to the components' own counters, told by
    ``flags[F_CDROPS]``); mirror destinations' counts from ``macc``, and the mirrors' own
    statistics to their rows of ``mtab`` (those without a row stay in ``macc`` for the worker).
    """
    if ln:
        ringcore.ring_enqueue(pctrl, pslots, lc, 0, ln)
    for c in range(n_rx.shape[0]):
        for r in range(n_rx[c]):
            row = stats[rx_slot[c, r]]
            stat_add(row, RX_PACKETS, rxp[c, r])
            stat_add(row, RX_BYTES, rxb[c, r])
            rxp[c, r] = 0
            rxb[c, r] = 0
        for f in range(cdrops.shape[1]):
            if cdrops_acc[c, f]:
                cdrops[c, f] += cdrops_acc[c, f]
                cdrops_acc[c, f] = 0
                flags[F_CDROPS] = 1
    for t in range(tx_info.shape[0]):
        if txp[t] == 0 and txd[t] == 0:
            continue
        row = stats[tx_info[t, TI_SLOT]]
        stat_add(row, TX_PACKETS, txp[t])
        stat_add(row, TX_BYTES, txb[t])
        if txd[t]:
            stat_add(row, ring_full if tx_info[t, TI_KIND] == KIND_RING else tx_full, txd[t])
        txp[t] = 0
        txb[t] = 0
        txd[t] = 0
    for m in range(macc.shape[0]):
        if macc[m, MA_TXP] or macc[m, MA_FULL]:
            row = stats[minfo[m, MI_DSLOT]]
            stat_add(row, TX_PACKETS, macc[m, MA_TXP])
            stat_add(row, TX_BYTES, macc[m, MA_TXB])
            stat_add(row, _MIRROR_FULL, macc[m, MA_FULL])
            macc[m, MA_TXP] = 0
            macc[m, MA_TXB] = 0
            macc[m, MA_FULL] = 0
        r = minfo[m, MI_SROW]
        if r >= 0:
            for f in range(MA_TXP):
                if macc[m, f]:
                    stat_add(mtab[r], f, macc[m, f])
                    macc[m, f] = 0


@njit(cache=True, nogil=True, **_NO_NRT)
def _run_core(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray,
              header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
              ctype: np.ndarray, n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray, rx_slot: np.ndarray,
              rx_tmpl: np.ndarray, rx_ntmpl: np.ndarray, rx_cur: np.ndarray, tmpl: np.ndarray,
              tx_off: np.ndarray,
              tabs: np.ndarray, tab_off: np.ndarray, cdrops: np.ndarray, txbuf: np.ndarray,
              txcnt: np.ndarray, iters: int, burst: int, ring_full: int, tx_full: int,
              rxp: np.ndarray, rxb: np.ndarray, txp: np.ndarray, txb: np.ndarray, txd: np.ndarray,
              lc: np.ndarray, rxs: np.ndarray, cdrops_acc: np.ndarray, rx_moff: np.ndarray, rx_mn: np.ndarray,
              tx_info: np.ndarray, mlist: np.ndarray, minfo: np.ndarray, mparams: np.ndarray,
              mvlan: np.ndarray, macc: np.ndarray, mtab: np.ndarray, flags: np.ndarray, vh: np.ndarray,
              msel: np.ndarray, rx_vlan: np.ndarray, mout: np.ndarray, mdst: np.ndarray, rx_cbh: np.ndarray,
              pyh: np.ndarray, pyio: np.ndarray, pydst: np.ndarray) -> int:
    """:func:`native_run_plan` with its scratch arrays passed in (zeroed accumulators, cache room).

    Compiled without the numba runtime (``_nrt=False``): it allocates nothing, so no
    array view it makes (``txbuf[c]``, ``ring_ctrl[a]``) costs a reference-count
    round trip, and the helpers are inlined into one loop.
    """
    ncomp = n_rx.shape[0]
    cap = txbuf.shape[1]
    burst = min(burst, cap, rxs.shape[0])
    ln = 0
    total = 0
    dirty = False
    for _ in range(iters):
        got = 0
        for c in range(ncomp):
            t0 = tx_off[c]
            fwd = ctype[c] == CT_FORWARD
            for r in range(n_rx[c]):
                # forward/merge receive straight into their one tx buffer; a classifier into rxs
                if fwd:
                    cnt = txcnt[t0]
                    room = min(cap - cnt, burst)
                    dst = txbuf[t0]
                else:  # each of its rows holds < burst and gains at most one frame per received frame
                    cnt = 0
                    room = min(burst, cap - burst + 1)
                    dst = rxs
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
                        dst[cnt + i] = b
                        fresh(refcnt, meta, b, size, slot)
                    nt = rx_ntmpl[c, r]
                    if nt:
                        cur = rx_cur[c, r]
                        base = rx_tmpl[c, r]
                        for i in range(k):
                            b = dst[cnt + i]
                            row = tmpl[base + cur]
                            for j in range(size):
                                data[b, HEADROOM + j] = row[j]
                            cur += 1
                            if cur == nt:
                                cur = 0
                        rx_cur[c, r] = cur
                    ln -= k
                    rxp[c, r] += k
                    rxb[c, r] += k * size
                elif kind == KIND_RING:
                    a = rx_arg[c, r]
                    k = ringcore.ring_dequeue(ring_ctrl[a], ring_slots[a], dst, cnt, room)
                    if k:
                        for i in range(k):
                            rxb[c, r] += meta[dst[cnt + i], 1]
                        rxp[c, r] += k
                elif kind == KIND_PHY and room > 0:  # counts its own rx, as its rx_burst does
                    k = phy_rx_at(vh[rx_arg[c, r]], pctrl, pslots, refcnt, header, meta, data, stats, rx_slot[c, r],
                                  dst[cnt : cnt + room], room)
                elif kind == KIND_TAP and room > 0:
                    k = tap_rx_at(vh[rx_arg[c, r]], pctrl, pslots, refcnt, header, meta, data, stats, rx_slot[c, r],
                                  dst[cnt : cnt + room], room)
                elif kind == KIND_VHOST and room > 0:
                    k = vhost_rx_at(vh, rx_arg[c, r], pctrl, pslots, refcnt, meta, data, header, stats, rx_slot[c, r],
                                    dst[cnt : cnt + room], room, flags[F_VHOST:])
                elif kind == KIND_PCAP and room > 0:
                    k = pcap_rx_at(vh[rx_arg[c, r]], pctrl, pslots, refcnt, header, meta, data, stats, rx_slot[c, r],
                                   dst[cnt : cnt + room], room)
                elif kind == KIND_PY and room > 0:  # a driver in Python: counts its own rx, as its _rx does
                    s = rx_arg[c, r]
                    k = _py(pyh, s, room)
                    for i in range(k):
                        dst[cnt + i] = pyio[s, i]
                if k and rx_cbh[c, r]:  # Python callbacks, in their order (they may keep a prefix)
                    s = rx_cbh[c, r] - 1
                    for i in range(k):
                        pyio[s, i] = dst[cnt + i]
                    got += k
                    k = max(_py(pyh, s, k), 0)
                    got -= k
                    for i in range(k):
                        dst[cnt + i] = pyio[s, i]
                if k and rx_mn[c, r]:
                    run_mirrors(rx_moff[c, r], rx_mn[c, r], mlist, minfo, mparams, mvlan, macc, msel, data,
                             meta, refcnt, pctrl, pslots, header, stats, ring_ctrl, ring_slots, dst[cnt : cnt + k], k,
                             k * rx_arg[c, r] if kind == KIND_NULL else -1, vh)
                if k and rx_vlan[c, r, 0] != OP_NONE:  # after the port's mirrors, as after its rx_burst
                    got += k
                    k = vlan_burst(pctrl, pslots, refcnt, meta, data, header, stats[rx_slot[c, r]],
                                   dst[cnt : cnt + k], k, rx_vlan[c, r, 0], rx_vlan[c, r, 1], msel)
                    got -= k
                got += k
                if fwd:
                    txcnt[t0] = cnt + k
                elif ctype[c] == CT_MIRROR:  # originals to tx 0, duplicates to tx 1 (deep: fresh pool buffers)
                    if k:
                        deep = raw_array(tab_off[c], 1, np.int64)[0] != 0
                        m2 = mirror_duplicate(data, meta, refcnt, pctrl, pslots, rxs, k, deep, mout, mdst)
                        if m2 < 2 * k:
                            cdrops_acc[c, _MIRROR_NOMBUF] += 2 * k - m2
                        for i in range(m2):
                            t = t0 + mdst[i]
                            txbuf[t, txcnt[t]] = mout[i]
                            txcnt[t] += 1
                elif ctype[c] == CT_PY:  # a component in Python: ids in pyio[s, :m], tx index in pydst[s, :m]
                    if k:
                        s = tab_off[c]
                        for i in range(k):
                            pyio[s, i] = rxs[i]
                        m = _py(pyh, s, k)
                        for i in range(m):
                            t = t0 + pydst[s, i]
                            if txcnt[t] == cap:  # it may send more frames than it received
                                ln = _flush_rows(pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, txbuf,
                                                 txcnt, txp, txb, txd, lc, ln, data, stats, tx_info,
                                                 mlist, minfo, mparams, mvlan, macc, msel, vh, flags, pyh,
                                                 pyio)
                            txbuf[t, txcnt[t]] = pyio[s, i]
                            txcnt[t] += 1
                else:
                    o = tab_off[c]
                    for i in range(k):
                        b = rxs[i]
                        code, x, y = classify_one(data, meta, tabs, o, b)
                        if code == 0:
                            t = t0 + x
                            txbuf[t, txcnt[t]] = b
                            txcnt[t] += 1
                        elif code == 1:
                            if y - x > 1:
                                atomic_add(refcnt, b, y - x - 1)
                            for j in range(x, y):
                                t = t0 + tabs[j]
                                txbuf[t, txcnt[t]] = b
                                txcnt[t] += 1
                        else:
                            cdrops_acc[c, _RUNT if code == -2 else _NO_ROUTE] += 1
                            ln = _trim(pctrl, pslots, lc, _free_one(refcnt, header, b, lc, ln))
                # Send the rows that reached a burst.  One call site (``_flush`` is inlined: each
                # site costs compile time).  A row holds < burst before an rx burst and gains at most
                # one frame per received frame, so it never passes its capacity (2 bursts) here.
                for t in range(t0, tx_off[c + 1]):
                    if txcnt[t] >= burst:
                        ln = _flush(t, pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, txbuf, txcnt,
                                    txp, txb, txd, lc, ln, data, stats, tx_info, mlist, minfo, mparams, mvlan, macc,
                        msel, vh, flags, pyh, pyio)
        total += got
        if got == 0:
            ln = _flush_rows(pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, txbuf,
                        txcnt, txp, txb, txd, lc, ln, data, stats, tx_info, mlist, minfo, mparams, mvlan, macc,
                        msel, vh, flags, pyh, pyio)
            if dirty:  # idle: publish counters and give the cached buffers back now, not at the end
                _settle(pctrl, pslots, stats, n_rx, rx_slot, tx_info, ring_full, tx_full, rxp, rxb, txp,
                        txb, txd, lc, ln, cdrops, cdrops_acc, minfo, macc, mtab, flags)
                ln = 0
                dirty = False
        else:
            dirty = True
    ln = _flush_rows(pctrl, pslots, refcnt, meta, header, ring_ctrl, ring_slots, txbuf,
                        txcnt, txp, txb, txd, lc, ln, data, stats, tx_info, mlist, minfo, mparams, mvlan, macc,
                        msel, vh, flags, pyh, pyio)
    _settle(pctrl, pslots, stats, n_rx, rx_slot, tx_info, ring_full, tx_full, rxp, rxb, txp, txb, txd,
            lc, ln, cdrops, cdrops_acc, minfo, macc, mtab, flags)
    return total


@njit(cache=True, nogil=True)
def native_run_plan(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray,
                    header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
                    ctype: np.ndarray, n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray,
                    rx_slot: np.ndarray, rx_tmpl: np.ndarray, rx_ntmpl: np.ndarray, rx_cur: np.ndarray,
                    tmpl: np.ndarray, tx_off: np.ndarray, tabs: np.ndarray, tab_off: np.ndarray, cdrops: np.ndarray,
                    txbuf: np.ndarray, txcnt: np.ndarray, iters: int, burst: int, ring_full: int,
                    tx_full: int, rx_moff: np.ndarray, rx_mn: np.ndarray, tx_info: np.ndarray, rx_vlan: np.ndarray,
                    mlist: np.ndarray, minfo: np.ndarray, mparams: np.ndarray, mvlan: np.ndarray,
                    macc: np.ndarray, mtab: np.ndarray, flags: np.ndarray, vh: np.ndarray, rx_cbh: np.ndarray,
                    pyh: np.ndarray, pyio: np.ndarray, pydst: np.ndarray) -> int:
    """Run ``iters`` passes over the components; return frames received.

    Component ``c`` (``ctype[c]``: :data:`CT_FORWARD` for forward/merge,
    :data:`CT_CLASSIFIER`) receives from ``n_rx[c]`` ports (``rx_kind``/``rx_arg``/
    ``rx_slot`` rows: driver kind, null frame size or ring index, stats row; for a null
    source with templates, ``rx_ntmpl`` of them from row ``rx_tmpl`` of ``tmpl``, cycled
    from ``rx_cur``) and sends to the tx rows ``tx_off[c]:tx_off[c+1]`` (``tx_info[t]``: ``TI_*``
    columns, among them the driver kind, arg and stats row).  A classifier's packed table is ``tabs[tab_off[c]:]`` and
    its drops (``runt``, ``no_route``) are added to ``cdrops[c]``.  ``txbuf[t, :txcnt[t]]``
    holds tx row ``t``'s unsent frames.  Port mirrors (built-in filters or none, ring or
    null destination) run on received bursts of rx row ``(c, r)`` (``mlist[rx_moff[c, r]:
    +rx_mn[c, r]]``) and on bursts about to be sent on tx row ``t`` (``tx_info[t]``: ``TI_*`` columns,
    also the VLAN operation of the tx row; ``rx_vlan[c, r]`` is an rx row's: operation code and TCI);
    mirror ``m`` is ``minfo[m]`` (``MI_*`` columns), ``mparams[m]``/``mvlan[m]`` its
    filters, and its statistics are added to its row ``minfo[m, MI_SROW]`` of ``mtab``
    (or left in ``macc[m]`` when that is -1).  ``flags`` (``F_*`` words) tell the
    worker what it has to settle after the call.  vhost port ``v`` (rx/tx arg) is row
    ``vh[v]`` (``VH_*`` columns); its region table (:mod:`spp.ports.vhost_mem` ``R_*``
    columns) is rows ``vh[v, VH_REG0]:+vh[v, VH_NREG]`` of the same array, after the
    ports' rows.  Its guest memory must stay mapped for the whole call.  A phy port's
    rx/tx arg is a row of ``vh`` too (:mod:`spp.ports.phy` ``PH_*`` columns: its rings by
    address, which must stay mapped for the whole call).  What has no compiled kernel runs in
    Python, one call per burst through hook row ``s`` (``pyh[s]``, the burst in ``pyio[s]``): a
    port of kind ``KIND_PY`` (rx/tx arg ``s``), a component of type :data:`CT_PY` (``tab_off[c]``
    is ``s``; the tx index of each frame it returns in ``pydst[s]``), and the Python callbacks of
    an rx row (``rx_cbh[c, r]``: ``s + 1``, 0 for none) or a tx row (``tx_info[t, TI_CBH]``).
    On return every ``txcnt`` is 0, every counter is up to date and every free buffer is back in the pool ring.
    """
    ncomp = n_rx.shape[0]
    ntx = tx_info.shape[0]
    max_rx = rx_kind.shape[1]
    rxp = np.zeros((ncomp, max_rx), np.int64)
    rxb = np.zeros((ncomp, max_rx), np.int64)
    txp = np.zeros(ntx, np.int64)
    txb = np.zeros(ntx, np.int64)
    txd = np.zeros(ntx, np.int64)
    cdrops_acc = np.zeros(cdrops.shape, np.int64)
    lc = np.empty(LC_CAP + LC_REFILL + 2 * txbuf.shape[1] + burst, np.int32)
    rxs = np.empty(max(burst, 1), np.int32)
    msel = np.empty(2 * (txbuf.shape[1] + burst), np.int32)
    mout = np.empty(2 * max(burst, 1), np.int32)
    mdst = np.empty(2 * max(burst, 1), np.int64)
    total: int = _run_core(pctrl, pslots, refcnt, meta, data, header, ring_ctrl, ring_slots, stats, ctype, n_rx,
                           rx_kind, rx_arg, rx_slot, rx_tmpl, rx_ntmpl, rx_cur, tmpl, tx_off, tabs, tab_off, cdrops,
                           txbuf, txcnt, iters, burst, ring_full, tx_full, rxp, rxb,
                           txp, txb, txd, lc, rxs, cdrops_acc, rx_moff, rx_mn, tx_info, mlist, minfo, mparams,
                           mvlan, macc, mtab, flags, vh, msel, rx_vlan, mout, mdst, rx_cbh, pyh, pyio, pydst)
    return total


_NO_DATA = np.zeros((1, 1), np.uint8)
_NO_TABS = np.zeros(1, np.int64)


def native_run(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
               header: np.ndarray, ring_ctrl: np.ndarray, ring_slots: np.ndarray, stats: np.ndarray,
               n_rx: np.ndarray, rx_kind: np.ndarray, rx_arg: np.ndarray, rx_slot: np.ndarray,
               tx_kind: np.ndarray, tx_arg: np.ndarray, tx_slot: np.ndarray, txbuf: np.ndarray,
               txcnt: np.ndarray, iters: int, burst: int, ring_full: int, tx_full: int) -> int:
    """Forward/merge only, one tx port per component, no templates: :func:`native_run_plan`'s first form.

    Component ``c`` receives from ``n_rx[c]`` ports and sends to tx row ``c``;
    ``txbuf[c, :txcnt[c]]`` holds its unsent frames.
    """
    n = n_rx.shape[0]
    shape = rx_kind.shape
    tx_info = np.zeros((tx_kind.shape[0], TI_COLS), np.int64)
    tx_info[:, TI_KIND], tx_info[:, TI_ARG], tx_info[:, TI_SLOT] = tx_kind, tx_arg, tx_slot
    return int(native_run_plan(pctrl, pslots, refcnt, meta, _NO_DATA, header, ring_ctrl, ring_slots, stats,
                               np.zeros(n, np.int64), n_rx, rx_kind, rx_arg, rx_slot, np.zeros(shape, np.int64),
                               np.zeros(shape, np.int64), np.zeros(shape, np.int64), _NO_DATA,
                               np.arange(n + 1, dtype=np.int64), _NO_TABS,
                               np.zeros(n, np.int64), np.zeros((n, N_FIELDS), np.int64), txbuf, txcnt, iters,
                               burst, ring_full, tx_full, np.zeros(shape, np.int64), np.zeros(shape, np.int64),
                               tx_info, np.zeros((*shape, 2), np.int64),
                               _NO_TABS, np.zeros((1, MI_COLS), np.int64), np.zeros((1, N_PARAMS), np.int64),
                               np.zeros((1, 4096), np.uint8), np.zeros((1, STAT_COLS), np.int64),
                               np.zeros((1, STAT_COLS), np.int64), np.zeros(N_FLAGS, np.int64),
                               np.zeros((1, VH_COLS), np.int64), np.zeros(shape, np.int64), _NO_TABS,
                               np.zeros((1, 1), np.int32), np.zeros((1, 1), np.int64)))
