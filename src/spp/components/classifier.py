"""``classifier`` (1 rx, any tx): sends each frame to tx ports by VLAN and destination MAC.

Lookup per frame (SPEC §3; a frame is tagged when its outer ethertype is 0x8100):

1. Pick the frame's VLAN table (untagged frames use the untagged table, which is
   distinct from VLAN 4095's).  No table for that VLAN → the untagged ``default``
   port, else drop (``no_route``).
2. Exact hit on (VLAN, destination MAC) → that port (multicast addresses too).
3. Miss and the destination is broadcast/multicast → a copy to every port of that
   VLAN's table (its default included, each port once), and for a tagged frame also
   to the untagged default.  Copies share the buffer (``refcnt`` up), never memcpy.
4. Miss and unicast → the VLAN's default; else, for a tagged frame, the untagged
   default; else drop (``no_route``).

Frames shorter than an Ethernet header (14 bytes; 18 for a tagged one) are dropped
as ``runt``.

A :class:`ClassTable` is an immutable snapshot in numpy arrays (an open-addressing
hash of ``(VLAN, MAC)`` keys, a per-VLAN default array and per-VLAN flood lists),
built on the control side by :func:`build_table`.  The manager binds a table and
the tx port order together in a new :class:`Classifier` instance
(:meth:`Classifier.with_table`) and publishes it in the worker's plan, so a worker
never sees a table that does not match its ports.  Instances made this way share
their drop counters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np
from numba import njit

from spp.components.base import KERNEL_CLASSIFIER, Component, Kernel, register_component
from spp.runtime.atomics import atomic_add
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import N_FIELDS, REASON

#: Number of VLAN slots: slot 0 is the untagged table, slot ``vid + 1`` VLAN ``vid``.
VLAN_SLOTS: Final = 4097
_EMPTY: Final = -1
_HASH_MUL: Final = 0x9E3779B97F4A7C15
_M64: Final = (1 << 64) - 1


def vlan_slot(vlan: int | None) -> int:
    """Table slot of ``vlan`` (None: untagged)."""
    return 0 if vlan is None else vlan + 1


def table_key(slot: int, mac: int) -> int:
    """Hash key of (VLAN slot, 48-bit MAC)."""
    return (slot << 48) | mac


def _bucket(key: int, mask: int) -> int:
    return (((key * _HASH_MUL) & _M64) >> 32) & mask


#: Layout of a packed table (one int64 array, so a burst call passes one argument):
#: ``[mask, n_entries, cap, 0, keys[cap], values[cap], defaults[VLAN_SLOTS],
#: has_table[VLAN_SLOTS], flood_off[VLAN_SLOTS + 1], flood_ports[...]]``.
_HDR: Final = 4


@dataclass(frozen=True, eq=False)
class ClassTable:
    """A compiled classifier table; never modified after :func:`build_table`.

    ``packed`` holds everything; the other fields are views of it: ``keys`` (-1 =
    empty bucket), ``values`` (tx index), ``defaults`` (tx index per VLAN slot, -1 =
    none), ``has_table`` (1 if the VLAN has any entry), ``flood_off``/``flood_ports``
    (per VLAN slot, the tx indices a broadcast/multicast miss is copied to).
    """

    packed: np.ndarray
    n_entries: int

    @property
    def cap(self) -> int:
        return int(self.packed[2])

    @property
    def keys(self) -> np.ndarray:
        return self.packed[_HDR : _HDR + self.cap]

    @property
    def values(self) -> np.ndarray:
        return self.packed[_HDR + self.cap : _HDR + 2 * self.cap]

    @property
    def defaults(self) -> np.ndarray:
        o = _HDR + 2 * self.cap
        return self.packed[o : o + VLAN_SLOTS]

    @property
    def has_table(self) -> np.ndarray:
        o = _HDR + 2 * self.cap + VLAN_SLOTS
        return self.packed[o : o + VLAN_SLOTS]

    @property
    def flood_off(self) -> np.ndarray:
        o = _HDR + 2 * self.cap + 2 * VLAN_SLOTS
        return self.packed[o : o + VLAN_SLOTS + 1]

    @property
    def flood_ports(self) -> np.ndarray:
        return self.packed[_HDR + 2 * self.cap + 3 * VLAN_SLOTS + 1 :]


def build_table(entries: Iterable[tuple[int | None, int, int]]) -> ClassTable:
    """Compile ``(vlan or None, mac or -1 for default, tx index)`` entries.

    Keys must be unique (the manager guarantees it); a repeated key keeps the last.
    """
    items = list(entries)
    cap = 16
    while cap < 2 * len(items):
        cap <<= 1
    keys = np.full(cap, _EMPTY, np.int64)
    values = np.full(cap, -1, np.int64)
    mask = cap - 1
    defaults = np.full(VLAN_SLOTS, -1, np.int64)
    has_table = np.zeros(VLAN_SLOTS, np.int64)
    members: dict[int, list[int]] = {}
    for vlan, mac, tx in items:
        slot = vlan_slot(vlan)
        has_table[slot] = 1
        ports = members.setdefault(slot, [])
        if tx not in ports:
            ports.append(tx)
        if mac < 0:
            defaults[slot] = tx
            continue
        key = table_key(slot, mac)
        i = _bucket(key, mask)
        while keys[i] != _EMPTY and keys[i] != key:
            i = (i + 1) & mask
        keys[i] = key
        values[i] = tx
    untagged_default = int(defaults[0])
    flood_off = np.zeros(VLAN_SLOTS + 1, np.int64)
    flat: list[int] = []
    for slot in range(VLAN_SLOTS):
        here = members.get(slot)
        if here:
            flat.extend(here)
            if slot and untagged_default >= 0 and untagged_default not in here:
                flat.append(untagged_default)
        flood_off[slot + 1] = len(flat)
    header = np.array([mask, len(items), cap, 0], np.int64)
    packed = np.concatenate([header, keys, values, defaults, has_table, flood_off, np.array(flat, np.int64)])
    packed.flags.writeable = False
    return ClassTable(packed, len(items))


EMPTY_TABLE: Final = build_table(())
_RUNT: Final = REASON["runt"]
_NO_ROUTE: Final = REASON["no_route"]


@njit(cache=True, nogil=True, inline="always")
def classify_one(data: np.ndarray, meta: np.ndarray, tabs: np.ndarray, o: int, b: int) -> tuple[int, int, int]:
    """Look buffer ``b`` up in the packed classifier table at ``tabs[o:]``: the classifier's decision.

    Returns
    ``(code, x, y)``: code 0 → one output, tx index ``x``; 1 → flood to the tx indices
    ``tabs[x:y]`` (absolute offsets); -1 → ``no_route``; -2 → ``runt``.
    """
    mask = tabs[o]
    cap = tabs[o + 2]
    o_keys = o + _HDR
    o_val = o_keys + cap
    o_def = o_val + cap
    o_has = o_def + VLAN_SLOTS
    o_foff = o_has + VLAN_SLOTS
    o_fp = o_foff + VLAN_SLOTS + 1
    off = meta[b, 0]
    ln = meta[b, 1]
    if ln < 14:
        return -2, 0, 0
    slot = np.int64(0)
    if data[b, off + 12] == 0x81 and data[b, off + 13] == 0x00:
        if ln < 18:
            return -2, 0, 0
        slot = ((np.int64(data[b, off + 14]) & 0x0F) << 8 | np.int64(data[b, off + 15])) + 1
    if tabs[o_has + slot] == 0:
        t = tabs[o_def]
        if t >= 0:
            return 0, t, 0
        return -1, 0, 0
    mac = np.int64(0)
    for j in range(6):
        mac = (mac << 8) | np.int64(data[b, off + j])
    key = (slot << 48) | mac
    h = np.int64(((np.uint64(key) * np.uint64(_HASH_MUL)) >> np.uint64(32)) & np.uint64(mask))
    while True:
        k = tabs[o_keys + h]
        if k == key:
            return 0, tabs[o_val + h], 0
        if k == -1:
            break
        h = (h + 1) & mask
    if data[b, off] & 1:
        s = tabs[o_foff + slot]
        e = tabs[o_foff + slot + 1]
        if e == s:
            return -1, 0, 0
        return 1, o_fp + s, o_fp + e
    t = tabs[o_def + slot]
    if t < 0 and slot != 0:
        t = tabs[o_def]
    if t >= 0:
        return 0, t, 0
    return -1, 0, 0


@njit(cache=True, nogil=True)
def classify(data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, bufs: np.ndarray, n: int, tab: np.ndarray,
             out: np.ndarray, drops: np.ndarray) -> tuple[int, int]:
    """Classify ``bufs[:n]`` with packed table ``tab`` into ``out[0]`` (ids) / ``out[1]`` (tx).

    Dropped buffers go to ``out[2]``, counted in ``drops`` (``runt``, ``no_route``).
    Returns ``(m, d)``: ``m`` outputs and ``d`` buffers to free.  Flood copies add
    ``copies - 1`` references to the buffer.  ``out`` is int32 ``(3, cap)`` with
    ``cap >= n * (number of tx ports)``.  Each decision is :func:`classify_one`'s.
    """
    out_ids = out[0]
    out_dst = out[1]
    dead = out[2]
    m = 0
    d = 0
    for i in range(n):
        b = bufs[i]
        code, x, y = classify_one(data, meta, tab, 0, b)
        if code == 0:
            out_ids[m] = b
            out_dst[m] = x
            m += 1
        elif code == 1:
            if y - x > 1:
                atomic_add(refcnt, b, y - x - 1)
            for j in range(x, y):
                out_ids[m] = b
                out_dst[m] = tab[j]
                m += 1
        else:
            drops[_RUNT if code == -2 else _NO_ROUTE] += 1
            dead[d] = b
            d += 1
    return m, d


_warm = False


def warm_up(dp: Dataplane) -> None:
    """Compile (or load from cache) the burst functions now, not in a worker's first burst.

    A worker busy compiling cannot adopt a new plan, so the manager calls this once
    per process before starting workers.
    """
    global _warm
    if _warm:
        return
    from spp.components.vlan import apply_vlan, unshare

    none = np.zeros(1, np.int32)
    classify(dp.data, dp.meta, dp.refcnt, none, 0, EMPTY_TABLE.packed, np.zeros((3, 1), np.int32),
             np.zeros(N_FIELDS, np.int64))
    apply_vlan(dp.data, dp.meta, none, 0, 0, 0)
    unshare(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header, none, 0, np.empty(1, np.int32))
    _warm = True


class Classifier(Component):
    """Forwards with 1 rx port, at least 1 tx port and at least 1 active table entry."""

    type_name = "classifier"
    max_rx: ClassVar[int | None] = 1
    max_tx: ClassVar[int | None] = None

    def __init__(self, dp: Dataplane, name: str, core: int, table: ClassTable = EMPTY_TABLE,
                 drops: np.ndarray | None = None) -> None:
        super().__init__(dp, name, core)
        if drops is not None:
            if drops.shape != (N_FIELDS,):
                raise ValueError(f"drops must be an int64 row of {N_FIELDS} counters")
            self.drops = drops
        self.table = table
        self._out = np.empty((3, 0), np.int32)
        self._table_arr = table.packed
        self._entries = table.n_entries

    def with_table(self, table: ClassTable) -> Classifier:
        """A new instance using ``table`` (whose tx indices match the plan it goes into).

        It shares this instance's drop counters, name and core.
        """
        return Classifier(self.dp, self.name, self.core, table, self.drops)

    def ready(self, n_rx: int, n_tx: int) -> bool:
        return n_rx == 1 and n_tx >= 1 and self._entries >= 1

    def kernel(self, n_tx: int) -> Kernel:
        return Kernel(KERNEL_CLASSIFIER, table=self.table.packed)

    def process(self, bufs: np.ndarray, n: int, n_tx: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        out = self._out
        if out.shape[1] < n * n_tx or out.shape[1] < n:
            out = self._out = np.empty((3, max(n * n_tx, n, 32 * max(n_tx, 1))), np.int32)
        dp = self.dp
        m, d = classify(dp.data, dp.meta, dp.refcnt, bufs, n, self._table_arr, out, self.drops)
        if d:
            dp.free(out[2], d)
        return out[0], out[1], m


def _make(dp: Dataplane, name: str, core: int) -> Component:
    return Classifier(dp, name, core)


register_component("classifier")(_make)
