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

from spp.components.base import Component, register_component
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


@dataclass(frozen=True, eq=False)
class ClassTable:
    """A compiled classifier table; arrays are never modified after :func:`build_table`."""

    keys: np.ndarray  # int64[cap], -1 = empty
    values: np.ndarray  # int32[cap], tx index
    mask: int
    defaults: np.ndarray  # int32[VLAN_SLOTS], -1 = none
    has_table: np.ndarray  # uint8[VLAN_SLOTS]
    flood_off: np.ndarray  # int32[VLAN_SLOTS + 1]
    flood_ports: np.ndarray  # int32[...]
    n_entries: int


def build_table(entries: Iterable[tuple[int | None, int, int]]) -> ClassTable:
    """Compile ``(vlan or None, mac or -1 for default, tx index)`` entries.

    Keys must be unique (the manager guarantees it); a repeated key keeps the last.
    """
    items = list(entries)
    cap = 16
    while cap < 2 * len(items):
        cap <<= 1
    keys = np.full(cap, _EMPTY, np.int64)
    values = np.full(cap, -1, np.int32)
    mask = cap - 1
    defaults = np.full(VLAN_SLOTS, -1, np.int32)
    has_table = np.zeros(VLAN_SLOTS, np.uint8)
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
    flood_off = np.zeros(VLAN_SLOTS + 1, np.int32)
    flat: list[int] = []
    for slot in range(VLAN_SLOTS):
        here = members.get(slot)
        if here:
            flat.extend(here)
            if slot and untagged_default >= 0 and untagged_default not in here:
                flat.append(untagged_default)
        flood_off[slot + 1] = len(flat)
    return ClassTable(keys, values, mask, defaults, has_table, flood_off, np.array(flat, np.int32), len(items))


EMPTY_TABLE: Final = build_table(())


@njit(cache=True, nogil=True)
def classify(data: np.ndarray, meta: np.ndarray, refcnt: np.ndarray, bufs: np.ndarray, n: int,
             keys: np.ndarray, values: np.ndarray, mask: int, defaults: np.ndarray, has_table: np.ndarray,
             flood_off: np.ndarray, flood_ports: np.ndarray, out_ids: np.ndarray, out_dst: np.ndarray,
             dead: np.ndarray, drops: np.ndarray, f_runt: int, f_no_route: int) -> tuple[int, int]:
    """Classify ``bufs[:n]`` into ``out_ids/out_dst``; dropped buffers go to ``dead``.

    Returns ``(m, d)``: ``m`` outputs and ``d`` buffers to free (already counted in
    ``drops``).  Flood copies add ``copies - 1`` references to the buffer.
    ``out_*`` need room for ``n * (number of tx ports)`` entries.
    """
    m = 0
    d = 0
    mul = np.uint64(_HASH_MUL)
    sh = np.uint64(32)
    umask = np.uint64(mask)
    for i in range(n):
        b = bufs[i]
        off = meta[b, 0]
        ln = meta[b, 1]
        if ln < 14:
            drops[f_runt] += 1
            dead[d] = b
            d += 1
            continue
        slot = np.int64(0)
        if data[b, off + 12] == 0x81 and data[b, off + 13] == 0x00:
            if ln < 18:
                drops[f_runt] += 1
                dead[d] = b
                d += 1
                continue
            slot = ((np.int64(data[b, off + 14]) & 0x0F) << 8 | np.int64(data[b, off + 15])) + 1
        if has_table[slot] == 0:
            t = defaults[0]
            if t >= 0:
                out_ids[m] = b
                out_dst[m] = t
                m += 1
            else:
                drops[f_no_route] += 1
                dead[d] = b
                d += 1
            continue
        mac = np.int64(0)
        for j in range(6):
            mac = (mac << 8) | np.int64(data[b, off + j])
        key = (np.int64(slot) << 48) | mac
        h = np.int64(((np.uint64(key) * mul) >> sh) & umask)
        hit = -1
        while True:
            k = keys[h]
            if k == key:
                hit = values[h]
                break
            if k == -1:
                break
            h = (h + 1) & mask
        if hit >= 0:
            out_ids[m] = b
            out_dst[m] = hit
            m += 1
            continue
        if data[b, off] & 1:
            s = flood_off[slot]
            e = flood_off[slot + 1]
            if e == s:
                drops[f_no_route] += 1
                dead[d] = b
                d += 1
                continue
            if e - s > 1:
                atomic_add(refcnt, b, e - s - 1)
            for j in range(s, e):
                out_ids[m] = b
                out_dst[m] = flood_ports[j]
                m += 1
            continue
        t = defaults[slot]
        if t < 0 and slot != 0:
            t = defaults[0]
        if t >= 0:
            out_ids[m] = b
            out_dst[m] = t
            m += 1
        else:
            drops[f_no_route] += 1
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
    t = EMPTY_TABLE
    classify(dp.data, dp.meta, dp.refcnt, none, 0, t.keys, t.values, t.mask, t.defaults, t.has_table, t.flood_off,
             t.flood_ports, none, none, none, np.zeros(N_FIELDS, np.int64), REASON["runt"], REASON["no_route"])
    apply_vlan(dp.data, dp.meta, none, 0, 0, 0)
    unshare(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header, none, 0)
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
        self._ids = np.empty(0, np.int32)
        self._dst = np.empty(0, np.int32)
        self._dead = np.empty(0, np.int32)

    def with_table(self, table: ClassTable) -> Classifier:
        """A new instance using ``table`` (whose tx indices match the plan it goes into).

        It shares this instance's drop counters, name and core.
        """
        return Classifier(self.dp, self.name, self.core, table, self.drops)

    def ready(self, n_rx: int, n_tx: int) -> bool:
        return n_rx == 1 and n_tx >= 1 and self.table.n_entries >= 1

    def process(self, bufs: np.ndarray, n: int, n_tx: int) -> tuple[np.ndarray, np.ndarray | None, int]:
        need = n * max(n_tx, 1)
        if len(self._ids) < need:
            self._ids = np.empty(need, np.int32)
            self._dst = np.empty(need, np.int32)
        if len(self._dead) < n:
            self._dead = np.empty(n, np.int32)
        t = self.table
        dp = self.dp
        m, d = classify(dp.data, dp.meta, dp.refcnt, bufs, n, t.keys, t.values, t.mask, t.defaults, t.has_table,
                        t.flood_off, t.flood_ports, self._ids, self._dst, self._dead, self.drops, REASON["runt"],
                        REASON["no_route"])
        if d:
            dp.free(self._dead, int(d))
        return self._ids, self._dst, int(m)


def _make(dp: Dataplane, name: str, core: int) -> Component:
    return Classifier(dp, name, core)


register_component("classifier")(_make)
