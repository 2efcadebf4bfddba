"""The mirror data path: one compiled call per burst for filter + reference/copy + enqueue.

A :class:`PortMirror` is attached to its source port as an rx callback (runs right after
receive, before the rx callbacks that were there already), a tx callback (runs right
before transmit, after the tx callbacks that were there already) or both.  For each burst it:

1. asks the optional Python burst filter for a mask (``filter(dp, ids, context)``);
2. calls :func:`mirror_tap`, which applies the built-in filters, adds a reference to each
   selected buffer (shallow) or copies it into a fresh buffer (deep, truncated to
   ``snaplen`` with the origin record ``M_ORIGLEN``/``M_ORIGPORT``), and — for ring and
   null destinations without callbacks — enqueues the copies on the destination too;
3. otherwise offers the copies to ``destination.tx_burst`` from Python.

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

from spp.mirror.filters import MatchSpec, select_frames
from spp.ports.base import Port, PortError
from spp.ports.native import KIND_NULL, KIND_RING, null_tx, ring_tx
from spp.runtime.dataplane import Dataplane, copy_frames, pool_alloc, pool_free, pool_ref
from spp.runtime.stats import drop_field, stat_add

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
_NO_RING_CTRL = np.zeros(32, np.int64)
_NO_RING_SLOTS = np.zeros(2, np.int32)


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def mirror_tap(data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
               header: np.ndarray, stats: np.ndarray, bufs: np.ndarray, n: int, mask: np.ndarray,
               use_mask: bool, params: np.ndarray, vlanmap: np.ndarray, deep: bool, snaplen: int,
               src_slot: int, sel: np.ndarray, out: np.ndarray, mstats: np.ndarray, dkind: int,
               dring_ctrl: np.ndarray, dring_slots: np.ndarray, dslot: int, dfull_field: int) -> int:
    """Mirror the matching frames of ``bufs[:n]``; see the module docstring.

    Returns how many copies ``out[:k]`` the caller must still transmit: 0 when the
    destination was handled here (``dkind`` ring or null), else the copies to offer.
    """
    k = select_frames(data, meta, bufs, n, mask, use_mask, params, vlanmap, sel)
    stat_add(mstats, 1, n - k)
    if deep:
        got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, k)
        copy_frames(data, meta, sel, out, got, snaplen)
        for i in range(got):
            meta[out[i], 6] = src_slot
        stat_add(mstats, 2, k - got)
        k = got
    else:
        for i in range(k):
            out[i] = sel[i]
        pool_ref(refcnt, out, 0, k)
    if k == 0:
        return 0
    if dkind == 2:
        acc = ring_tx(dring_ctrl, dring_slots, meta, stats, dslot, out, 0, k)
    elif dkind == 1:
        acc = null_tx(pctrl, pslots, refcnt, meta, header, stats, dslot, out, 0, k)
    else:
        return k
    stat_add(mstats, 0, acc)
    if acc < k:
        stat_add(mstats, 3, k - acc)
        stat_add(stats[dslot], dfull_field, k - acc)
        pool_free(pctrl, pslots, refcnt, header, out, acc, k - acc)
    return 0


class _Scratch(threading.local):
    """Per-thread work arrays (a port may be transmitted on from several workers)."""

    def __init__(self) -> None:
        self.sel = np.empty(256, np.int32)
        self.out = np.empty(256, np.int32)


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
        self._scratch = _Scratch()
        self._full_field = drop_field("mirror_full")
        kind = destination.native()[0]
        if kind == KIND_RING:
            idx = destination.id.index
            self._dest_native = (KIND_RING, dp.ring_ctrl[idx], dp.ring_slots[idx])
        elif kind == KIND_NULL:
            self._dest_native = (KIND_NULL, _NO_RING_CTRL, _NO_RING_SLOTS)
        else:
            self._dest_native = (0, _NO_RING_CTRL, _NO_RING_SLOTS)
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
        """Mirror the matching frames of ``bufs[:n]`` (which stay the caller's)."""
        scr = self._scratch
        if len(scr.out) < n:
            scr.sel = np.empty(n, np.int32)
            scr.out = np.empty(n, np.int32)
        dest = self.destination
        if dest.closed or dest.has_callbacks:  # transmit from Python, through its callbacks
            native: tuple[int, np.ndarray, np.ndarray] = (0, _NO_RING_CTRL, _NO_RING_SLOTS)
        else:
            native = self._dest_native
        if self.lock is None:
            k = self._tap(bufs, n, native)
        else:
            with self.lock:
                k = self._tap(bufs, n, native)
        if k == 0:
            return
        out = scr.out
        acc = dest.tx_burst(out, k) if not dest.closed else 0
        stat_add(self.stats, S_PACKETS, acc)
        if acc < k:
            stat_add(self.stats, S_FULL, k - acc)
            dest.count_drop("mirror_full", k - acc)
            self.dp.free(out[acc:k].copy(), k - acc)

    def _tap(self, bufs: np.ndarray, n: int, native: tuple[int, np.ndarray, np.ndarray]) -> int:
        """Filter + copy (+ enqueue for a native destination); the copies left to transmit."""
        mask = _NO_MASK
        if self.filter is not None:
            try:
                mask = self._mask(bufs, n)
            except Exception as e:  # the application's code: never let it break the original path
                self._fail(e, n)
                return 0
        dp = self.dp
        scr = self._scratch
        return int(mirror_tap(dp.data, dp.meta, dp.refcnt, dp.pool_ctrl, dp.pool_slots, dp.header, dp.stats,
                              bufs, n, mask, self.filter is not None, self._params, self._vlanmap, self.deep,
                              self.snaplen, self.source.slot, scr.sel, scr.out, self.stats, native[0], native[1],
                              native[2], self.destination.slot, self._full_field))

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
