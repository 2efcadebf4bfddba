"""Compiled split-virtqueue data path of the vhost-user backend (``vhost:N``).

The guest's memory is one ``uint8`` array ``mem`` (with ``uint16``/``uint32``/
``uint64`` views of the same bytes, see :mod:`spp.ports.vhost_mem`); a virtqueue is
one row of an ``int64`` state array (``Q_*`` columns) holding the ring's offsets in
``mem``, its size and our two private indices.  Split-ring layout (virtio 1.x §2.7)::

    desc[num]   16 bytes each: u64 addr, u32 len, u16 flags, u16 next
    avail       u16 flags, u16 idx, u16 ring[num]        (written by the guest)
    used        u16 flags, u16 idx, {u32 id, u32 len}[num] (written by us)

Ordering rules, kept exactly:

* ``avail.idx`` is read with an acquire load *before* any ring entry or descriptor
  it covers is read;
* the used entries (and the data they describe) are written first, then ``used.idx``
  is published with **one aligned 16-bit release store** (never torn, never early);
* descriptors are completed in order and at once (we never hold one), so our
  ``last_avail`` always equals our ``used.idx``.

Guest addresses in descriptors are translated through the region table (``R_GPA``:
guest physical for QEMU, the frontend's virtual addresses for virtio-user — it
announces them as its "guest physical" addresses).  A descriptor outside every
region, a chain longer than the ring or a bad index is a guest bug: the frame is
dropped and counted ``bad_frame`` (and the descriptor is still returned, so the
guest does not leak it).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.vhost_mem import R_GPA, R_HOST, R_SIZE
from spp.runtime.atomics import atomic_cas, load_acquire, store_release
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, HEADROOM, pool_alloc, pool_free
from spp.runtime.rawmem import copy_bytes
from spp.runtime.stats import ERRORS, REASON, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS, stat_add

# Columns of a queue's state row.
Q_READY: Final = 0  # 1: the data path may use this queue
Q_NUM: Final = 1  # ring size
Q_DESC: Final = 2  # offsets in mem
Q_AVAIL: Final = 3
Q_USED: Final = 4
Q_LAST_AVAIL: Final = 5  # next avail entry to take (free-running, taken mod 2**16)
Q_USED_IDX: Final = 6  # our used.idx (free-running, stored mod 2**16)
Q_CALL: Final = 7  # set to 1 when the guest wants an interrupt for what we just did
Q_BROKEN: Final = 8  # 1: the guest published an impossible avail.idx; queue ignored
Q_LOCK: Final = 9  # spin lock: 1 while a burst uses the queue (two threads may reach one queue)
Q_HDR: Final = 10  # virtio-net header length negotiated (10 or 12), set before Q_READY
Q_MRG: Final = 11  # 1: mergeable receive buffers negotiated, set before Q_READY
Q_COLS: Final = 16

VRING_DESC_F_NEXT: Final = 1
VRING_DESC_F_WRITE: Final = 2
VRING_DESC_F_INDIRECT: Final = 4
VRING_AVAIL_F_NO_INTERRUPT: Final = 1
VRING_USED_F_NO_NOTIFY: Final = 1

#: Compiled without numba's reference counting (no allocation here): an array view or a
#: call would otherwise cost an atomic increment/decrement pair, per frame.
_NO_NRT: dict[str, Any] = {"_nrt": False}
_RUNT = REASON["runt"]
_TOO_LONG = REASON["too_long"]
_BAD = REASON["bad_frame"]


@njit(cache=True, nogil=True, **_NO_NRT)
def translate(regs: np.ndarray, addr: int, length: int) -> int:
    """Offset in ``mem`` of guest range ``[addr, addr+length)``, or -1 if no region holds it all."""
    for r in range(regs.shape[0]):
        start = regs[r, R_GPA]
        if start <= addr and addr + length <= start + regs[r, R_SIZE]:
            return int(regs[r, R_HOST] + (addr - start))
    return -1


@njit(cache=True, nogil=True, **_NO_NRT)
def _put_used(m32: np.ndarray, m16: np.ndarray, q: np.ndarray, head: int, written: int) -> None:
    num = q[Q_NUM]
    u = q[Q_USED_IDX]
    e = (q[Q_USED] + 4 + 8 * (u & (num - 1))) >> 2
    m32[e] = np.uint32(head)
    m32[e + 1] = np.uint32(written)
    q[Q_USED_IDX] = (u + 1) & 0xFFFF


@njit(cache=True, nogil=True, **_NO_NRT)
def _publish(m16: np.ndarray, q: np.ndarray, moved: int) -> None:
    """Release the used entries written so far; ask for a call if the guest wants one."""
    if moved:
        store_release(m16, (q[Q_USED] >> 1) + 1, np.uint16(q[Q_USED_IDX]))  # type: ignore[arg-type]
        if (load_acquire(m16, q[Q_AVAIL] >> 1) & VRING_AVAIL_F_NO_INTERRUPT) == 0:
            q[Q_CALL] = 1


@njit(cache=True, nogil=True, **_NO_NRT)
def _avail_count(m16: np.ndarray, q: np.ndarray) -> int:
    """Entries the guest published that we have not taken; -1 if the index is impossible."""
    idx = load_acquire(m16, (q[Q_AVAIL] >> 1) + 1)
    cnt = int((idx - q[Q_LAST_AVAIL]) & 0xFFFF)
    if cnt > q[Q_NUM]:
        q[Q_BROKEN] = 1
        return -1
    return cnt


@njit(cache=True, nogil=True, **_NO_NRT)
def _avail_head(m16: np.ndarray, q: np.ndarray, i: int) -> int:
    return int(m16[(q[Q_AVAIL] >> 1) + 2 + ((q[Q_LAST_AVAIL] + i) & (q[Q_NUM] - 1))])


@njit(cache=True, nogil=True, inline="always", **_NO_NRT)
def _lock(q: np.ndarray) -> None:
    """Take the queue's spin lock (held for one burst; contention is rare: a worker and a
    Python mirror, or two components, reaching the same queue)."""
    while atomic_cas(q, Q_LOCK, 0, 1) != 0:
        pass


@njit(cache=True, nogil=True, inline="always", **_NO_NRT)
def _unlock(q: np.ndarray) -> None:
    store_release(q, Q_LOCK, 0)


@njit(cache=True, nogil=True, **_NO_NRT)
def guest_to_pool(mem: np.ndarray, m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray,
                  q: np.ndarray, hdr_len: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray,
                  meta: np.ndarray, data: np.ndarray, header: np.ndarray, stats: np.ndarray, slot: int,
                  out: np.ndarray, n: int) -> int:
    """Receive from the guest's transmit queue into fresh pool buffers ``out[:k]``; return ``k``.

    Holds the queue's lock for the burst; see :func:`_guest_to_pool`.
    """
    _lock(q)
    k: int = _guest_to_pool(mem, m16, m32, m64, regs, q, hdr_len, pctrl, pslots, refcnt, meta, data, header, stats,
                       slot, out, n)
    _unlock(q)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def _guest_to_pool(mem: np.ndarray, m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray,
                   q: np.ndarray, hdr_len: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray,
                   meta: np.ndarray, data: np.ndarray, header: np.ndarray, stats: np.ndarray, slot: int,
                   out: np.ndarray, n: int) -> int:
    """Receive from the guest's transmit queue into fresh pool buffers ``out[:k]``; return ``k``.

    Takes at most ``n`` avail chains, and no more than the pool can hold (what is left
    stays in the guest's ring: back-pressure, not loss).  Each chain's first
    ``hdr_len`` bytes are the virtio-net header and are skipped.  Runts, frames longer
    than a buffer's data room and broken chains are counted and their buffers reused.
    """
    if q[Q_READY] == 0 or q[Q_BROKEN] != 0:
        return 0
    cnt = _avail_count(m16, q)
    if cnt <= 0:
        return 0
    cnt = min(cnt, n)
    k = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, cnt)
    if k == 0:
        return 0
    num = q[Q_NUM]
    dbase = q[Q_DESC]
    row = stats[slot]
    got = 0
    nbytes = 0
    runts = 0
    longs = 0
    bad = 0
    for i in range(k):
        head = _avail_head(m16, q, i)
        b = out[got]
        pos = 0
        skip = hdr_len
        broken = head >= num
        toolong = False
        d = head
        steps = 0
        while not broken:
            o = dbase + 16 * d
            addr = int(m64[o >> 3])
            ln = int(m32[(o + 8) >> 2])
            fl = m16[(o + 12) >> 1]
            nx = int(m16[(o + 14) >> 1])
            if fl & VRING_DESC_F_INDIRECT:
                broken = True
                break
            h = translate(regs, addr, ln)
            if h < 0:
                broken = True
                break
            start = 0
            if skip > 0:
                start = min(skip, ln)
                skip -= start
            c = ln - start
            if c > 0:
                if pos + c > DATA_ROOM:
                    toolong = True
                else:
                    copy_bytes(data, b * data.shape[1] + HEADROOM + pos, mem, h + start, c)
                pos += c
            if (fl & VRING_DESC_F_NEXT) == 0:
                break
            d = nx
            steps += 1
            if d >= num or steps >= num:
                broken = True
        _put_used(m32, m16, q, head if head < num else 0, 0)
        if broken:
            bad += 1
        elif toolong:
            longs += 1
        elif pos < ETHER_MIN:
            runts += 1
        else:
            meta[b, 0] = HEADROOM
            meta[b, 1] = pos
            meta[b, 2] = slot
            nbytes += pos
            got += 1
    q[Q_LAST_AVAIL] = (q[Q_LAST_AVAIL] + k) & 0xFFFF
    _publish(m16, q, k)
    if got < k:
        pool_free(pctrl, pslots, refcnt, header, out, got, k - got)
    if got:
        stat_add(row, RX_PACKETS, got)
        stat_add(row, RX_BYTES, nbytes)
    if runts or longs or bad:  # rare: an atomic add costs as much as a frame's copy
        stat_add(row, _RUNT, runts)
        stat_add(row, _TOO_LONG, longs)
        stat_add(row, _BAD, bad)
    return got


@njit(cache=True, nogil=True, **_NO_NRT)
def _chain_room(m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray, q: np.ndarray,
                head: int) -> int:
    """Writable bytes of the chain at ``head``; -1 if the chain is broken."""
    num = q[Q_NUM]
    if head >= num:
        return -1
    room = 0
    d = head
    for _ in range(num):
        o = q[Q_DESC] + 16 * d
        ln = int(m32[(o + 8) >> 2])
        fl = m16[(o + 12) >> 1]
        if fl & VRING_DESC_F_INDIRECT:
            return -1
        if fl & VRING_DESC_F_WRITE:
            if translate(regs, int(m64[o >> 3]), ln) < 0:
                return -1
            room += ln
        if (fl & VRING_DESC_F_NEXT) == 0:
            return room
        d = int(m16[(o + 14) >> 1])
        if d >= num:
            return -1
    return -1


@njit(cache=True, nogil=True, **_NO_NRT)
def _fill_chain(mem: np.ndarray, m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray,
                q: np.ndarray, head: int, heads: int, hdr_len: int, data: np.ndarray, b: int, off: int,
                pos: int, need: int) -> int:
    """Write stream bytes ``[pos, need)`` (header then frame) into the chain; return the new ``pos``."""
    num = q[Q_NUM]
    d = head
    for _ in range(num):
        o = q[Q_DESC] + 16 * d
        ln = int(m32[(o + 8) >> 2])
        fl = m16[(o + 12) >> 1]
        if fl & VRING_DESC_F_WRITE and pos < need:
            h = translate(regs, int(m64[o >> 3]), ln)
            c = min(ln, need - pos)
            while c > 0:
                if pos < hdr_len:  # the virtio-net header: zero but num_buffers (bytes 10, 11)
                    t = min(c, hdr_len - pos)
                    for x in range(t):
                        p = pos + x
                        mem[h + x] = heads & 0xFF if p == 10 else (heads >> 8) & 0xFF if p == 11 else 0
                else:
                    t = c
                    s = off + pos - hdr_len
                    copy_bytes(mem, h, data, b * data.shape[1] + s, t)
                h += t
                pos += t
                c -= t
        if (fl & VRING_DESC_F_NEXT) == 0 or pos >= need:
            return pos
        d = int(m16[(o + 14) >> 1])
    return pos


@njit(cache=True, nogil=True, **_NO_NRT)
def pool_to_guest(mem: np.ndarray, m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray,
                  q: np.ndarray, hdr_len: int, mrg: bool, pctrl: np.ndarray, pslots: np.ndarray,
                  refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray, header: np.ndarray,
                  stats: np.ndarray, slot: int, ids: np.ndarray, n: int) -> int:
    """Transmit ``ids[:n]`` into the guest's receive queue; return how many were taken (a prefix).

    Holds the queue's lock for the burst; see :func:`_pool_to_guest`.
    """
    _lock(q)
    k: int = _pool_to_guest(mem, m16, m32, m64, regs, q, hdr_len, mrg, pctrl, pslots, refcnt, meta, data, header,
                       stats, slot, ids, n)
    _unlock(q)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def _pool_to_guest(mem: np.ndarray, m16: np.ndarray, m32: np.ndarray, m64: np.ndarray, regs: np.ndarray,
                   q: np.ndarray, hdr_len: int, mrg: bool, pctrl: np.ndarray, pslots: np.ndarray,
                   refcnt: np.ndarray, meta: np.ndarray, data: np.ndarray, header: np.ndarray,
                   stats: np.ndarray, slot: int, ids: np.ndarray, n: int) -> int:
    """Transmit ``ids[:n]`` into the guest's receive queue; return how many were taken (a prefix).

    Each frame gets a zeroed virtio-net header (``num_buffers`` set when ``hdr_len`` is
    12) and the frame bytes.  With mergeable rx buffers a frame may span several avail
    chains; without, it must fit one chain, and a frame too big for the chain at hand
    is taken, counted ``too_long`` and freed (the chain stays for the next frame).  The
    burst stops at the first frame that finds no room: the rest is the caller's.
    Taken buffers are freed here (``ids[:k]`` is consumed).
    """
    if q[Q_READY] == 0 or q[Q_BROKEN] != 0 or n == 0:
        return 0
    cnt = _avail_count(m16, q)
    num = q[Q_NUM]
    dbase = q[Q_DESC]
    if cnt <= 0:
        return 0
    row = stats[slot]
    used = 0  # avail chains consumed
    k = 0
    nbytes = 0
    longs = 0
    bad = 0
    while k < n and used < cnt:
        b = ids[k]
        off = meta[b, 0]
        flen = meta[b, 1]
        need = hdr_len + flen
        # Fast path: the chain is one writable descriptor that holds the whole frame.
        head = _avail_head(m16, q, used)
        if head < num:
            o = dbase + 16 * head
            fl = m16[(o + 12) >> 1]
            ln = int(m32[(o + 8) >> 2])
            if (fl & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE)) == VRING_DESC_F_WRITE \
                    and ln >= need:
                h = translate(regs, int(m64[o >> 3]), ln)
                if h >= 0:
                    for x in range(hdr_len):
                        mem[h + x] = 0
                    if hdr_len == 12:
                        mem[h + 10] = 1  # num_buffers
                    copy_bytes(mem, h + hdr_len, data, b * data.shape[1] + off, flen)
                    _put_used(m32, m16, q, head, need)
                    used += 1
                    nbytes += flen
                    k += 1
                    continue
        # Pass 1: which chains (how many) hold the frame.
        room = 0
        heads = 0
        broken = False
        while room < need and used + heads < cnt:
            r = _chain_room(m16, m32, m64, regs, q, _avail_head(m16, q, used + heads))
            if r < 0:
                broken = True
                break
            room += r
            heads += 1
            if not mrg:
                break
        if broken:
            # Return the measured chains and the broken one empty; the frame tries the next chain.
            for j in range(heads + 1):
                head = _avail_head(m16, q, used + j)
                _put_used(m32, m16, q, head if head < q[Q_NUM] else 0, 0)
            used += heads + 1
            bad += 1
            continue
        if room < need:
            if not mrg and heads == 1:
                longs += 1  # this frame can never fit a chain like this one
                k += 1
                continue
            break  # wait for more chains (the rest of the burst is the caller's)
        # Pass 2: write header + frame across the chains, one used entry per chain.
        pos = 0
        for j in range(heads):
            head = _avail_head(m16, q, used + j)
            before = pos
            pos = _fill_chain(mem, m16, m32, m64, regs, q, head, heads, hdr_len, data, b, off, pos, need)
            _put_used(m32, m16, q, head, pos - before)
        used += heads
        nbytes += flen
        k += 1
    if bad:
        # Broken chains were counted per chain, not per frame: report them as errors.
        stat_add(row, ERRORS, bad)
    q[Q_LAST_AVAIL] = (q[Q_LAST_AVAIL] + used) & 0xFFFF
    _publish(m16, q, used)
    sent = k - longs
    if sent:
        stat_add(row, TX_PACKETS, sent)
        stat_add(row, TX_BYTES, nbytes)
    if longs:
        stat_add(row, _TOO_LONG, longs)
    if k:
        pool_free(pctrl, pslots, refcnt, header, ids, 0, k)
    return k
