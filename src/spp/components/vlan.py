"""VLAN tag operations applied per port and direction (SPEC §3).

``add`` pushes an 802.1Q tag with TCI ``(pcp << 13) | vid`` on an untagged frame, or
rewrites the TCI of a tagged one; ``del`` strips the outer tag if present.  The tag
is inserted into the buffer's headroom (no FCS is written, unlike the original).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from spp.runtime.dataplane import pool_alloc, pool_free
from spp.runtime.rawmem import copy_bytes
from spp.runtime.stats import ERRORS, REASON, stat_add

_NOMBUF = REASON["nombuf"]

OP_NONE = 0
OP_ADD = 1
OP_DEL = 2
TPID = 0x8100
#: Compiled without numba's runtime (they allocate nothing), so the worker loop can inline them.
_NO_NRT: dict[str, Any] = {"_nrt": False}


@dataclass(frozen=True)
class VlanOp:
    """A port's VLAN operation: ``none``, ``add`` (with ``vid``/``pcp``) or ``del``."""

    operation: str = "none"
    vid: int = 0
    pcp: int = 0

    def __post_init__(self) -> None:
        if self.operation not in ("none", "add", "del"):
            raise ValueError(f"vlan operation {self.operation!r}: expected add, del or none")
        if not 0 <= self.vid <= 4095:
            raise ValueError(f"VLAN id {self.vid} out of range: must be 0..4095")
        if not 0 <= self.pcp <= 7:
            raise ValueError(f"PCP {self.pcp} out of range: must be 0..7")

    @property
    def code(self) -> int:
        return {"none": OP_NONE, "add": OP_ADD, "del": OP_DEL}[self.operation]

    @property
    def tci(self) -> int:
        return (self.pcp << 13) | self.vid

    def to_json(self) -> dict[str, object]:
        return {"operation": self.operation, "id": self.vid, "pcp": self.pcp}


NO_VLAN = VlanOp()


@njit(cache=True, nogil=True, **_NO_NRT)
def apply_vlan(data: np.ndarray, meta: np.ndarray, ids: np.ndarray, n: int, op: int, tci: int) -> int:
    """Apply ``op`` to each frame of ``ids[:n]`` in place.

    Returns how many frames could not be tagged (no headroom left, or a runt);
    those are left unchanged (the caller decides whether that is a drop).
    """
    bad = 0
    for i in range(n):
        b = ids[i]
        off = meta[b, 0]
        ln = meta[b, 1]
        if ln < 14:
            bad += 1
            continue
        tagged = ln >= 18 and data[b, off + 12] == 0x81 and data[b, off + 13] == 0x00
        if op == 1:
            if tagged:
                data[b, off + 14] = (tci >> 8) & 0xFF
                data[b, off + 15] = tci & 0xFF
            else:
                if off < 4:
                    bad += 1
                    continue
                no = off - 4
                for j in range(12):
                    data[b, no + j] = data[b, off + j]
                data[b, no + 12] = 0x81
                data[b, no + 13] = 0x00
                data[b, no + 14] = (tci >> 8) & 0xFF
                data[b, no + 15] = tci & 0xFF
                meta[b, 0] = no
                meta[b, 1] = ln + 4
        elif op == 2 and tagged:
            for j in range(11, -1, -1):
                data[b, off + 4 + j] = data[b, off + j]
            meta[b, 0] = off + 4
            meta[b, 1] = ln - 4
    return bad


@njit(cache=True, nogil=True, **_NO_NRT)
def unshare(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray,
            header: np.ndarray, ids: np.ndarray, n: int, one: np.ndarray) -> int:
    """Give every shared buffer of ``ids[:n]`` (reference count > 1) a private copy.

    Run before an in-place edit (a VLAN operation) so that the other holders of a
    shallow copy (a classifier flood, a mirror) keep seeing the original frame.
    Returns ``m``: the buffers kept, compacted into ``ids[:m]`` in order.  A frame
    for which no free buffer was left is released (its reference dropped) and not
    kept; the caller counts ``n - m`` as ``nombuf``.  ``one``: scratch, at least one int32.
    The Python worker and the compiled loop both call this.
    """
    m = 0
    for i in range(n):
        b = ids[i]
        if refcnt[b] > 1:
            k = pool_alloc(pctrl, pslots, refcnt, meta, one, 0, 1)
            nb = one[0]
            if k:
                off = meta[b, 0]
                ln = meta[b, 1]
                w = data.shape[1]
                copy_bytes(data, nb * w + off, data, b * w + off, ln)
                for c in range(meta.shape[1]):
                    meta[nb, c] = meta[b, c]
            one[0] = b
            pool_free(pctrl, pslots, refcnt, header, one, 0, 1)  # our reference to the shared one
            if k == 0:
                continue
            b = nb
        ids[m] = b
        m += 1
    return m


@njit(cache=True, nogil=True, inline="always")
def vlan_burst(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray,
               header: np.ndarray, row: np.ndarray, ids: np.ndarray, n: int, op: int, tci: int, one: np.ndarray) -> int:
    """A port's VLAN operation on ``ids[:n]`` (what the worker loop runs): shared buffers get
    private copies first (frames left without one: ``nombuf`` on the port, ``row``), frames the
    operation cannot edit count an error; returns how many frames are kept (``ids[:m]``)."""
    m: int = unshare(pctrl, pslots, refcnt, meta, data, header, ids, n, one)
    stat_add(row, _NOMBUF, n - m)
    bad: int = apply_vlan(data, meta, ids, m, op, tci)
    stat_add(row, ERRORS, bad)
    return m
