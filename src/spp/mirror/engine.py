"""The mirror data path: one compiled kernel per burst for filter + reference/copy + send.

A :class:`PortMirror` is attached to its source port as an rx callback (runs right after
receive, before the rx callbacks that were there already), a tx callback (runs right
before transmit, after the tx callbacks that were there already) or both.  The worker
loop runs the mirrors of its ports itself, with :func:`mirror_one` (one row of a mirror
table per mirror); a burst that reaches the callback from Python (a mirror with a Python
filter or lock, a destination without a compiled driver) runs the same kernel:

1. the optional Python burst filter gives a mask (``filter(dp, ids, context)``);
2. :func:`mirror_one` applies the built-in filters, adds a reference to each selected
   buffer (shallow) or copies it into a fresh buffer (deep, truncated to ``snaplen`` with
   the origin record ``M_ORIGLEN``/``M_ORIGPORT``), and sends the copies to a ring, null,
   phy, tap or pcap destination with that driver's kernel;
3. any other destination gets them through ``destination.tx_burst`` from Python.

The original burst is never touched: the callback always keeps all ``n`` frames.

Statistics (one int64 row, shared memory for shared mirrors): ``packets`` (copies the
destination took), ``filtered`` (frames a filter rejected), ``nombuf`` (deep copies the
pool could not give), ``full`` (copies the destination refused; also counted on the
destination port as ``mirror_full``) and ``errors`` (frames of a burst on which the
Python filter raised or returned a wrong shape: the mirror then logs the error, keeps it
in :attr:`PortMirror.error` and detaches itself; the original path is never affected).
For every frame the source sees in a mirrored direction exactly one of the five is
incremented.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final

import numpy as np
from numba import njit

from spp.mirror.filters import N_PARAMS, MatchSpec, select_frames
from spp.ports.base import Port, PortError
from spp.ports.native import KIND_NONE, KIND_NULL, KIND_PHY, KIND_RING, KIND_TAP, null_tx, ring_tx
from spp.ports.pcap import pcap_tx_at
from spp.ports.phy import phy_tx_at
from spp.ports.tap import tap_tx_at
from spp.runtime import ringcore
from spp.runtime.atomics import atomic_add
from spp.runtime.dataplane import Dataplane, copy_frames, pool_alloc, pool_free
from spp.runtime.stats import REASON, TX_BYTES, TX_PACKETS, drop_field, stat_add

log = logging.getLogger(__name__)

#: Columns of a mirror's statistics row.
S_PACKETS, S_FILTERED, S_NOMBUF, S_FULL, S_ERRORS = range(5)
STAT_NAMES: Final[tuple[str, ...]] = ("packets", "filtered", "nombuf", "full", "errors")
STAT_COLS: Final = 8

DIRECTIONS: Final[tuple[str, ...]] = ("rx", "tx", "both")
COPY_MODES: Final[tuple[str, ...]] = ("shallow", "deep")

#: A Python burst filter: ``filter(dp, ids, context) -> mask`` with ``ids`` the burst's
#: buffer ids (read-only) and ``mask`` a boolean array of the same length (True: mirror).
BurstFilter = Callable[[Dataplane, np.ndarray, Any], np.ndarray]

_NO_MASK = np.zeros(1, np.bool_)
_NO_VH = np.zeros((1, 5), np.int64)


#: Columns of a mirror's row in a mirror table (``minfo``): copy mode deep (0/1), snaplen,
#: source port's stats row, destination kind (``ports.native.KIND_*``; ``KIND_NONE``: the
#: caller transmits the copies), destination ring index or ``vh`` row, destination stats row,
#: the mirror's own statistics row in the stack's mirror table (-1: the caller adds them).
MI_DEEP, MI_SNAPLEN, MI_SRC, MI_DKIND, MI_DARG, MI_DSLOT, MI_SROW = range(7)
MI_COLS = 7
#: Columns of a mirror's accumulator row (``macc``, ``STAT_COLS`` wide) past its statistics: its
#: destination's tx packets, tx bytes and ``mirror_full`` drops, for the caller to add to the
#: destination's counters (the worker loop does it once per call, not per burst).
MA_TXP, MA_TXB, MA_FULL = 5, 6, 7
_MIRROR_FULL: Final = REASON["mirror_full"]
_LINK_DOWN: Final = REASON["link_down"]


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def _deep(data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
          header: np.ndarray, stats: np.ndarray, bufs: np.ndarray, n: int, params: np.ndarray, vlanmap: np.ndarray,
          snaplen: int, src_slot: int, sel: np.ndarray, out: np.ndarray, mstats: np.ndarray, dkind: int,
          dring_ctrl: np.ndarray, dring_slots: np.ndarray, dslot: int) -> int:
    """A deep (or snaplen'd) mirror of the matching frames of ``bufs[:n]``: copies into fresh pool
    buffers ``out`` (truncated to ``snaplen``, origin recorded), enqueued here on a ring or null
    destination.  Returns how many copies ``out[:k]`` the caller must still send (other kinds)."""
    k = select_frames(data, meta, bufs, n, _NO_MASK, False, params, vlanmap, sel)
    stat_add(mstats, S_FILTERED, n - k)
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, k)
    copy_frames(data, meta, sel, out, got, snaplen)
    for i in range(got):
        meta[out[i], 6] = src_slot
    stat_add(mstats, S_NOMBUF, k - got)
    k = got
    if k == 0:
        return 0
    if dkind == KIND_RING:
        acc = ring_tx(dring_ctrl, dring_slots, meta, stats, dslot, out, 0, k)
    elif dkind == KIND_NULL:
        acc = null_tx(pctrl, pslots, refcnt, meta, header, stats, dslot, out, 0, k)
    else:
        return k
    stat_add(mstats, S_PACKETS, acc)
    if acc < k:
        stat_add(mstats, S_FULL, k - acc)
        stat_add(stats[dslot], _MIRROR_FULL, k - acc)
        pool_free(pctrl, pslots, refcnt, header, out, acc, k - acc)
    return 0


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def _dev_tx(dkind: int, row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray,
                   header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray, dslot: int,
                   ids: np.ndarray, k: int, scratch: np.ndarray, mrow: np.ndarray, own: bool) -> None:
    """Send a mirror's copies ``ids[:k]`` on a phy/tap/pcap destination (row ``row`` of ``vh``)
    with the driver's own transmit kernel, which counts its tx;
    refused copies count ``full`` (mirror, ``mrow``) and ``mirror_full`` (destination) and are
    released; a destination not up takes them as ``link_down``.  ``own``: the copies are private
    (deep; released = freed), else shared references (the caller still holds one each)."""
    if dkind == KIND_PHY:
        acc = phy_tx_at(row, pctrl, pslots, refcnt, header, meta, data, stats, dslot, ids, k, scratch)
    elif dkind == KIND_TAP:
        acc = tap_tx_at(row, pctrl, pslots, refcnt, header, meta, data, stats, dslot, ids, k, scratch)
    else:
        acc = pcap_tx_at(row, pctrl, pslots, refcnt, header, meta, data, stats, dslot, ids, k, scratch)
    start = acc
    if acc < 0:
        stat_add(stats[dslot], _LINK_DOWN, k)
        start = 0
        acc = k
    elif acc < k:
        mrow[3] += k - acc
        stat_add(stats[dslot], _MIRROR_FULL, k - acc)
    mrow[0] += acc
    if start < k:
        if own:
            pool_free(pctrl, pslots, refcnt, header, ids, start, k - start)
        else:
            for i in range(start, k):  # never the last reference: the caller still holds one
                atomic_add(refcnt, ids[i], -1)


@njit(cache=True, nogil=True, inline="always")
def mirror_one(m: int, minfo: np.ndarray, mparams: np.ndarray, mvlan: np.ndarray, macc: np.ndarray,
               msel: np.ndarray, data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, pctrl: np.ndarray,
               pslots: np.ndarray, header: np.ndarray, stats: np.ndarray, ring_ctrl: np.ndarray,
               ring_slots: np.ndarray, bufs: np.ndarray, n: int, known_bytes: int, vh: np.ndarray) -> int:
    """Port mirror ``m`` (row ``minfo[m]``, ``MI_*`` columns) on ``bufs[:n]``, which stay the caller's.

    The one implementation of a port mirror, for the worker loop and :meth:`PortMirror.tap`.
    Built-in filters (``mparams[m]``, ``mvlan[m]``) select the frames; a shallow copy takes a
    reference (a plain store when the caller is the sole owner, count 1: nobody else can
    touch it; atomically otherwise), a deep one copies into a fresh buffer (:func:`_deep`).
    The copies go to the destination: a ring (enqueued here), null (counted only: a shallow
    copy would take a reference and drop it at once), phy/tap/pcap (the driver's transmit
    kernel on row ``vh[MI_DARG]``), or, for ``KIND_NONE``, back to the caller: the return
    value ``k`` says ``msel[half:half + k]`` holds copies it must send or free (``half`` is
    ``len(msel) // 2``; ``msel`` is scratch of at least ``2 * n``).

    The mirror's statistics go to ``macc[m, :5]``, its destination's tx packets/bytes and
    ``mirror_full`` to ``macc[m, MA_TXP/MA_TXB/MA_FULL]`` (a deep copy's destination counts
    at once), for the caller to add.  ``known_bytes``: the burst's total length if the
    caller knows it (a null source), else -1.
    """
    half = msel.shape[0] >> 1
    a = minfo[m, MI_DARG]
    dkind = minfo[m, MI_DKIND]
    ra = a if dkind == KIND_RING else 0
    if minfo[m, MI_DEEP]:
        k: int = _deep(data, meta, refcnt, pctrl, pslots, header, stats, bufs, n, mparams[m], mvlan[m],
                       minfo[m, MI_SNAPLEN], minfo[m, MI_SRC], msel[:half], msel[half:], macc[m], dkind,
                       ring_ctrl[ra], ring_slots[ra], minfo[m, MI_DSLOT])
        if k and dkind != KIND_NONE:  # copies for a phy/tap/pcap destination: ours to send or free
            _dev_tx(dkind, vh[a], pctrl, pslots, refcnt, header, meta, data, stats, minfo[m, MI_DSLOT],
                    msel[half:], k, msel[:half], macc[m], True)
            return 0
        return k
    if mparams[m, 0] == 0:
        k = n
        if dkind == KIND_NULL:  # every frame, counted only: no need for the id list
            nbytes = known_bytes
            if nbytes < 0:
                nbytes = 0
                for i in range(n):
                    nbytes += meta[bufs[i], 1]
            macc[m, S_PACKETS] += n
            macc[m, MA_TXP] += n
            macc[m, MA_TXB] += nbytes
            return 0
        for i in range(n):
            msel[i] = bufs[i]
    else:
        k = select_frames(data, meta, bufs, n, _NO_MASK, False, mparams[m], mvlan[m], msel)
        macc[m, S_FILTERED] += n - k
    if k == 0:
        return 0
    nbytes = 0
    if dkind == KIND_NULL:
        for i in range(k):
            nbytes += meta[msel[i], 1]
        macc[m, S_PACKETS] += k
        macc[m, MA_TXP] += k
        macc[m, MA_TXB] += nbytes
        return 0
    for i in range(k):
        b = msel[i]
        if refcnt[b] == 1:
            refcnt[b] = 2
        else:
            atomic_add(refcnt, b, 1)
    if dkind == KIND_NONE:
        for i in range(k):
            msel[half + i] = msel[i]
        return k
    if dkind != KIND_RING:  # phy/tap/pcap: the driver's own transmit kernel (it counts the destination's tx)
        _dev_tx(dkind, vh[a], pctrl, pslots, refcnt, header, meta, data, stats, minfo[m, MI_DSLOT], msel, k,
                msel[half:], macc[m], False)
        return 0
    acc = ringcore.ring_enqueue(ring_ctrl[a], ring_slots[a], msel, 0, k)
    for i in range(acc):
        nbytes += meta[msel[i], 1]
    macc[m, S_PACKETS] += acc
    macc[m, MA_TXP] += acc
    macc[m, MA_TXB] += nbytes
    if acc < k:
        macc[m, S_FULL] += k - acc
        macc[m, MA_FULL] += k - acc
        for i in range(acc, k):  # the caller still holds a reference: never the last one
            atomic_add(refcnt, msel[i], -1)
    return 0


@njit(cache=True, nogil=True, inline="always")
def run_mirrors(first: int, count: int, mlist: np.ndarray, minfo: np.ndarray, mparams: np.ndarray, mvlan: np.ndarray,
                macc: np.ndarray, msel: np.ndarray, data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray,
                pctrl: np.ndarray, pslots: np.ndarray, header: np.ndarray, stats: np.ndarray, ring_ctrl: np.ndarray,
                ring_slots: np.ndarray, bufs: np.ndarray, n: int, known_bytes: int, vh: np.ndarray) -> None:
    """:func:`mirror_one` for mirrors ``mlist[first:first+count]`` (the worker loop's; none has
    destination ``KIND_NONE``)."""
    for q in range(first, first + count):
        mirror_one(mlist[q], minfo, mparams, mvlan, macc, msel, data, meta, refcnt, pctrl, pslots, header, stats,
                   ring_ctrl, ring_slots, bufs, n, known_bytes, vh)


class _Scratch(threading.local):
    """Per-thread work arrays (a port may be transmitted on from several workers)."""

    def __init__(self) -> None:
        self.msel = np.empty(512, np.int32)
        self.minfo = np.zeros((1, MI_COLS), np.int64)
        self.macc = np.zeros((1, STAT_COLS), np.int64)


class PortMirror:
    """One mirror: ``source`` → ``destination`` in ``direction``; see the module docstring.

    Built and attached by :class:`spp.mirror.MirrorAgent`; ``stats`` is the row the
    counters go to (shared memory for shared mirrors, private for local ones).
    """

    def __init__(self, dp: Dataplane, name: str, source: Port, destination: Port, direction: str, *,
                 match: MatchSpec | None = None, filter: BurstFilter | None = None, context: Any = None,
                 lock: AbstractContextManager[Any] | None = None, snaplen: int = 0, copy: str = "shallow",
                 stats: np.ndarray | None = None) -> None:
        self.dp = dp
        self.name = name
        self.source = source
        self.destination = destination
        self.direction = direction
        self.match = match or MatchSpec()
        self.filter = filter
        self.context = context
        self.lock = lock
        self.snaplen = snaplen
        self.copy = copy
        self.deep = copy == "deep" or snaplen > 0
        self.stats = stats if stats is not None else np.zeros(STAT_COLS, np.int64)
        self._params, self._vlanmap = self.match.compile()
        self._mp = self._params.reshape(1, N_PARAMS)
        self._mv = self._vlanmap.reshape(1, -1)
        self._scratch = _Scratch()
        self._full_field = drop_field("mirror_full")
        kind = destination.native()[0]
        #: This mirror's row for :func:`mirror_one` when run from Python: a ring or null destination
        #: is handled there, any other is sent through its ``tx_burst`` (destination ``KIND_NONE``).
        self._row = np.array([int(self.deep), snaplen, source.slot, KIND_NONE,
                              destination.id.index if kind == KIND_RING else 0, destination.slot, -1], np.int64)
        self._dkind = kind if kind in (KIND_RING, KIND_NULL) else KIND_NONE
        self._cbs: list[tuple[str, Callable[[Port, np.ndarray, int], int]]] = []
        self._cb_lock = threading.Lock()
        #: Why the Python filter failed (the mirror detached itself), else None.
        self.error: str | None = None

    @staticmethod
    def behind(cb: Callable[[Port, np.ndarray, int], int]) -> PortMirror | None:
        """The port mirror whose callback ``cb`` is, else None."""
        pm = getattr(cb, "__self__", None)
        if isinstance(pm, PortMirror) and getattr(cb, "__func__", None) is PortMirror._callback:
            return pm
        return None

    @property
    def match_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Its built-in filters compiled for :func:`select_frames`: parameters and VLAN map."""
        return self._params, self._vlanmap

    # -- attach / detach --------------------------------------------------------

    def attach(self) -> None:
        """Hook into the source port's callbacks (takes effect with the next burst)."""
        with self._cb_lock:
            if self._cbs:
                return
            if self.direction in ("rx", "both"):
                self._cbs.append(("rx", self.source.add_rx_callback(self._callback, first=True)))
            if self.direction in ("tx", "both"):
                self._cbs.append(("tx", self.source.add_tx_callback(self._callback)))

    def detach(self) -> None:
        """Unhook (idempotent); a burst already inside the callback completes normally."""
        with self._cb_lock:
            cbs, self._cbs = self._cbs, []
        for d, cb in cbs:
            try:
                if d == "rx":
                    self.source.remove_rx_callback(cb)
                else:
                    self.source.remove_tx_callback(cb)
            except PortError:
                pass

    @property
    def attached(self) -> bool:
        return bool(self._cbs)

    # -- data path ----------------------------------------------------------------

    def _callback(self, port: Port, bufs: np.ndarray, n: int) -> int:
        self.tap(bufs, n)
        return n

    def tap(self, bufs: np.ndarray, n: int) -> None:
        """Mirror the matching frames of ``bufs[:n]`` (which stay the caller's): :func:`mirror_one`."""
        scr = self._scratch
        if len(scr.msel) < 2 * n:
            scr.msel = np.empty(2 * n, np.int32)
        dest = self.destination
        dkind = KIND_NONE if dest.closed or dest.has_callbacks else self._dkind  # else through its callbacks
        if self.lock is None:
            k = self._tap(bufs, n, dkind)
        else:
            with self.lock:
                k = self._tap(bufs, n, dkind)
        if k == 0:
            return
        half = len(scr.msel) >> 1
        out = scr.msel[half : half + k].copy()
        acc = dest.tx_burst(out, k) if not dest.closed else 0
        stat_add(self.stats, S_PACKETS, acc)
        if acc < k:
            stat_add(self.stats, S_FULL, k - acc)
            dest.count_drop("mirror_full", k - acc)
            self.dp.free(out[acc:k].copy(), k - acc)

    def _tap(self, bufs: np.ndarray, n: int, dkind: int) -> int:
        """Python filter, then :func:`mirror_one`; its counts settled; the copies left to transmit."""
        if self.filter is not None:
            try:
                mask = self._mask(bufs, n)
            except Exception as e:  # the application's code: never let it break the original path
                self._fail(e, n)
                return 0
            sel = bufs[:n][mask]
            stat_add(self.stats, S_FILTERED, n - len(sel))
            bufs, n = sel, len(sel)
            if n == 0:
                return 0
        dp = self.dp
        scr = self._scratch
        minfo, macc = scr.minfo, scr.macc
        minfo[0] = self._row
        minfo[0, MI_DKIND] = dkind
        k = int(mirror_one(0, minfo, self._mp, self._mv, macc, scr.msel, dp.data, dp.meta, dp.refcnt, dp.pool_ctrl,
                           dp.pool_slots, dp.header, dp.stats, dp.ring_ctrl, dp.ring_slots, bufs, n, -1, _NO_VH))
        row = macc[0]
        for col in range(MA_TXP):
            if row[col]:
                stat_add(self.stats, col, int(row[col]))
        if row[MA_TXP] or row[MA_FULL]:
            dst = self.destination.stats
            stat_add(dst, TX_PACKETS, int(row[MA_TXP]))
            stat_add(dst, TX_BYTES, int(row[MA_TXB]))
            stat_add(dst, _MIRROR_FULL, int(row[MA_FULL]))
        row[:] = 0
        return k

    def _mask(self, bufs: np.ndarray, n: int) -> np.ndarray:
        assert self.filter is not None
        ids = bufs[:n]
        ids.flags.writeable = False  # a read-only view: the filter must not rewrite the burst
        mask = np.asarray(self.filter(self.dp, ids, self.context), dtype=np.bool_)
        if mask.shape != (n,):
            raise TypeError(f"mirror {self.name!r}: the filter returned shape {mask.shape}; it must return one "
                            f"boolean per buffer id, shape ({n},)")
        return mask

    def _fail(self, e: Exception, n: int) -> None:
        stat_add(self.stats, S_ERRORS, n)
        self.error = f"{type(e).__name__}: {e}"
        log.error("mirror %s: filter failed, mirror disabled: %s", self.name, self.error)
        self.detach()

    # -- reporting ------------------------------------------------------------------

    def stats_dict(self) -> dict[str, int]:
        """``{packets, filtered, nombuf, full, errors}``."""
        return stats_dict(self.stats)


def stats_dict(row: np.ndarray) -> dict[str, int]:
    """A mirror statistics row as ``{packets, filtered, nombuf, full, errors}``."""
    return {name: int(row[i]) for i, name in enumerate(STAT_NAMES)}
