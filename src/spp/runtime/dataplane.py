"""The shared data plane of one stack: packet pool, rings, port counters, config.

One shared-memory segment per ``--file-prefix`` holds everything, laid out from a
small header, so any process can attach by name and see the same buffers, rings
and counters::

    dp = Dataplane.create("spp", n_bufs=8192)     # spp-primary (or a test)
    dp = Dataplane.attach("spp")                  # spp-vf, spp-mirror, ...

Buffers are identified by an int32 id.  Their bytes are ``dp.data[id]`` (a row of
``BUF_SIZE`` bytes); the frame is ``data[id, off:off+len]`` with ``off``/``len`` in
``dp.meta[id]``.  A burst is an int32 numpy array of ids; no Python object exists
per packet.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numba import njit

from spp.runtime import members, ringcore
from spp.runtime.atomics import atomic_add
from spp.runtime.rawmem import copy_bytes
from spp.runtime.shm import Segment, StackLock, mappers, segment_path
from spp.runtime.stats import N_FIELDS

MAGIC: Final = 0x5350505F504F4F4C  # "SPP_POOL"
VERSION: Final = 3  # 2: the member table; 3: rings mark free slots EMPTY (nobody waits), launched table

BUF_SIZE: Final = 2304
HEADROOM: Final = 128
#: Largest frame a buffer holds (bytes from ``HEADROOM`` to the end).
DATA_ROOM: Final = BUF_SIZE - HEADROOM
ETHER_MIN: Final = 14

# Columns of ``meta``.
M_OFF: Final = 0  # offset of the frame's first byte in the buffer
M_LEN: Final = 1  # frame length
M_PORT: Final = 2  # slot of the input port (-1: none)
M_TCI: Final = 3  # VLAN TCI seen on receive (-1: none)
M_FLAGS: Final = 4
M_ORIGLEN: Final = 5  # original length of a truncated mirror copy
M_ORIGPORT: Final = 6  # port slot a mirror copy came from
META_COLS: Final = 8

# Header words.
H_MAGIC, H_VERSION, H_NBUFS, H_BUFSIZE, H_HEADROOM, H_NRINGS, H_RINGSIZE = range(7)
H_NSLOTS, H_CONFIG_LEN, H_CONFIG_GEN, H_MIRROR_GEN, H_MIRROR_LEN = range(7, 12)
H_POOL_RING, H_DOUBLE_FREE, H_OWNER_PID, H_RING_ACTIVE_BASE = range(12, 16)
#: The pause generation (odd: the world is asked to stop, see :mod:`spp.runtime.pause`) and the
#: buffers reclaimed from dead processes (:mod:`spp.runtime.reclaim`).
H_PAUSE, H_RECLAIMED = 16, 17
#: Rows of the worker table (every worker thread of every process, for :mod:`spp.runtime.pause`).
MAX_WORKERS: Final = 256
WORKER_COLS: Final = 4
HEADER_WORDS: Final = 64
CONFIG_BYTES: Final = 64 * 1024
MIRROR_BYTES: Final = 256 * 1024

#: Port types and how many of each a stack can have.  Ring count comes from the layout.
PORT_TYPES: Final[tuple[str, ...]] = ("phy", "ring", "tap", "pcap", "nullpmd", "vhost", "memif")
PER_TYPE_SLOTS: Final = 64


def _pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


@dataclass(frozen=True)
class Layout:
    """Sizes that fix the segment's layout (stored in its header)."""

    n_bufs: int = 16384
    n_rings: int = 128
    ring_size: int = 1024

    def check(self) -> None:
        if not 64 <= self.n_bufs <= 1 << 22:
            raise ValueError(f"pool size {self.n_bufs}: must be 64..{1 << 22} buffers")
        if not 1 <= self.n_rings <= 4096:
            raise ValueError(f"ring count {self.n_rings}: must be 1..4096")
        if self.ring_size < 2 or self.ring_size & (self.ring_size - 1) or self.ring_size > 1 << 20:
            raise ValueError(f"ring size {self.ring_size}: must be a power of two, 2..{1 << 20}")

    @property
    def n_slots(self) -> int:
        return PER_TYPE_SLOTS * (len(PORT_TYPES) - 1) + self.n_rings

    @property
    def pool_ring(self) -> int:
        # room for every buffer plus what consumers may hold reserved: a free never finds it full
        return _pow2(self.n_bufs + ringcore.CLAIM_WINDOW)

    def offsets(self) -> tuple[dict[str, tuple[int, tuple[int, ...], Any]], int]:
        spec: list[tuple[str, tuple[int, ...], Any, int]] = [
            ("header", (HEADER_WORDS,), np.int64, 64),
            ("members", (members.MAX_MEMBERS, members.MEMBER_COLS), np.int64, 64),
            ("workers", (MAX_WORKERS, WORKER_COLS), np.int64, 64),
            ("launched", (members.MAX_LAUNCHED, members.LAUNCHED_COLS), np.int64, 64),
            ("pool_ctrl", (ringcore.CTRL_LEN,), np.int64, 64),
            ("pool_slots", (self.pool_ring,), np.int32, 64),
            ("refcnt", (self.n_bufs,), np.int32, 64),
            ("meta", (self.n_bufs, META_COLS), np.int32, 64),
            ("ring_ctrl", (self.n_rings, ringcore.CTRL_LEN), np.int64, 64),
            ("ring_slots", (self.n_rings, self.ring_size), np.int32, 64),
            ("stats", (self.n_slots, N_FIELDS), np.int64, 64),
            ("config", (CONFIG_BYTES,), np.uint8, 64),
            ("mirror", (MIRROR_BYTES,), np.uint8, 64),
            ("data", (self.n_bufs, BUF_SIZE), np.uint8, 4096),
        ]
        out: dict[str, tuple[int, tuple[int, ...], Any]] = {}
        pos = 0
        for name, shape, dtype, align in spec:
            pos = (pos + align - 1) // align * align
            out[name] = (pos, shape, dtype)
            pos += int(np.prod(shape)) * np.dtype(dtype).itemsize
        return out, pos


# --- compiled pool operations -------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def fresh(refcnt: np.ndarray, meta: np.ndarray, b: int, length: int, port: int) -> None:
    """Make buffer ``b`` a fresh one: one reference, ``length`` bytes at ``HEADROOM``, from ``port``
    (-1: none), no VLAN or origin record.  Every path that hands out a free buffer does this."""
    refcnt[b] = 1
    meta[b, 0] = HEADROOM
    meta[b, 1] = length
    meta[b, 2] = port
    meta[b, 3] = -1
    meta[b, 4] = 0
    meta[b, 5] = 0
    meta[b, 6] = -1


@njit(cache=True, nogil=True, inline="always")
def drop_ref(refcnt: np.ndarray, header: np.ndarray, b: int) -> bool:
    """Drop one reference to buffer ``b``; True when it was the last (the buffer is free now).

    A sole owner (count 1) needs no atomic: nobody else can touch the count (DPDK's prefree
    fast path).  A reference dropped on a free buffer is counted in the header
    (``H_DOUBLE_FREE``) and otherwise ignored, so a bug never corrupts the free list.
    """
    r = refcnt[b]
    if r == 1:
        refcnt[b] = 0
        return True
    if r <= 0:
        atomic_add(header, H_DOUBLE_FREE, 1)
        return False
    old = atomic_add(refcnt, b, -1)
    if old == 1:
        return True
    if old <= 0:
        atomic_add(refcnt, b, 1)
        atomic_add(header, H_DOUBLE_FREE, 1)
    return False


@njit(cache=True, nogil=True)
def pool_alloc(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, meta: np.ndarray,
               out: np.ndarray, start: int, n: int) -> int:
    """Take up to ``n`` free buffers into ``out[start:]``; each :func:`fresh` (ref 1, empty)."""
    k = ringcore.ring_dequeue(pctrl, pslots, out, start, n)
    for i in range(k):
        fresh(refcnt, meta, out[start + i], 0, -1)
    return k


@njit(cache=True, nogil=True)
def pool_free(pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              ids: np.ndarray, start: int, n: int) -> None:
    """:func:`drop_ref` each of ``ids[start:start+n]``; buffers reaching 0 return to the pool.

    The slice is consumed: it is overwritten as scratch.
    """
    m = 0
    for i in range(n):
        b = ids[start + i]
        if drop_ref(refcnt, header, b):
            ids[start + m] = b
            m += 1
    if m:
        ringcore.ring_enqueue(pctrl, pslots, ids, start, m)


@njit(cache=True, nogil=True)
def pool_ref(refcnt: np.ndarray, ids: np.ndarray, start: int, n: int) -> None:
    """Add one reference to each buffer (a shallow copy shares it)."""
    for i in range(n):
        atomic_add(refcnt, ids[start + i], 1)


@njit(cache=True, nogil=True)
def copy_frames(data: np.ndarray, meta: np.ndarray, src: np.ndarray, dst: np.ndarray, n: int,
                snaplen: int) -> None:
    """Deep-copy frame ``src[i]`` into fresh buffer ``dst[i]`` (truncated to ``snaplen`` if > 0)."""
    for i in range(n):
        s = src[i]
        d = dst[i]
        off = meta[s, 0]
        ln = meta[s, 1]
        cl = ln
        if snaplen > 0 and cl > snaplen:
            cl = snaplen
        copy_bytes(data, d * data.shape[1] + HEADROOM, data, s * data.shape[1] + off, cl)  # no runtime needed
        meta[d, 1] = cl
        meta[d, 2] = meta[s, 2]
        meta[d, 3] = meta[s, 3]
        meta[d, 5] = ln
        meta[d, 6] = meta[s, 2]


class Dataplane:
    """A stack's shared data plane; see the module docstring."""

    def __init__(self, prefix: str, seg: Segment) -> None:
        self.prefix = prefix
        self.seg = seg
        hdr = np.frombuffer(seg.buf, np.int64, HEADER_WORDS, 0)
        if hdr[H_MAGIC] != MAGIC or hdr[H_VERSION] != VERSION:
            raise RuntimeError(f"{seg.path} is not an spp data plane of version {VERSION}")
        self.layout = Layout(int(hdr[H_NBUFS]), int(hdr[H_NRINGS]), int(hdr[H_RINGSIZE]))
        offs, _ = self.layout.offsets()
        arrays: dict[str, np.ndarray] = {}
        for name, (off, shape, dtype) in offs.items():
            count = int(np.prod(shape))
            arrays[name] = np.frombuffer(seg.buf, dtype, count, off).reshape(shape)
        self.header = arrays["header"]
        self.members = arrays["members"]
        self.workers = arrays["workers"]
        #: Secondaries the primary launched (:func:`members.record_launch`).
        self.launched = arrays["launched"]
        self._member_row = -1
        self._lock: StackLock | None = None
        #: Live processes the segment was left to when this primary closed it (see :meth:`close`).
        self.left_to: list[members.Member] = []
        self.pool_ctrl = arrays["pool_ctrl"]
        self.pool_slots = arrays["pool_slots"]
        self.refcnt = arrays["refcnt"]
        self.meta = arrays["meta"]
        self.ring_ctrl = arrays["ring_ctrl"]
        self.ring_slots = arrays["ring_slots"]
        self.stats = arrays["stats"]
        self.config_bytes = arrays["config"]
        self.mirror_bytes = arrays["mirror"]
        self.data = arrays["data"]
        self.n_bufs = self.layout.n_bufs

    # -- life cycle ---------------------------------------------------------

    @classmethod
    def create(cls, prefix: str = "spp", layout: Layout | None = None, *,
               config: dict[str, Any] | None = None) -> Dataplane:
        """Create the segment for ``prefix`` with every buffer free.  Fails if it exists."""
        layout = layout or Layout()
        layout.check()
        offs, size = layout.offsets()
        seg = Segment(segment_path(prefix, "dataplane"), size, create=True)
        hdr = np.frombuffer(seg.buf, np.int64, HEADER_WORDS, 0)
        hdr[:] = 0
        hdr[H_NBUFS] = layout.n_bufs
        hdr[H_BUFSIZE] = BUF_SIZE
        hdr[H_HEADROOM] = HEADROOM
        hdr[H_NRINGS] = layout.n_rings
        hdr[H_RINGSIZE] = layout.ring_size
        hdr[H_NSLOTS] = layout.n_slots
        hdr[H_POOL_RING] = layout.pool_ring
        hdr[H_OWNER_PID] = os.getpid()
        off, shape, _ = offs["pool_slots"]
        slots = np.frombuffer(seg.buf, np.int32, shape[0], off)
        slots[:] = ringcore.EMPTY
        slots[: layout.n_bufs] = np.arange(layout.n_bufs, dtype=np.int32)
        off, shape, _ = offs["ring_slots"]
        np.frombuffer(seg.buf, np.int32, int(np.prod(shape)), off)[:] = ringcore.EMPTY
        off, shape, _ = offs["pool_ctrl"]
        ctrl = np.frombuffer(seg.buf, np.int64, shape[0], off)
        ctrl[ringcore.P_HEAD] = ctrl[ringcore.P_TAIL] = layout.n_bufs
        hdr[H_VERSION] = VERSION
        hdr[H_MAGIC] = MAGIC  # last: attachers check it
        dp = cls(prefix, seg)
        dp.set_config(config or {})
        dp._join(members.ROLE_PRIMARY)
        return dp

    @classmethod
    def attach(cls, prefix: str = "spp", *, role: int = members.ROLE_SECONDARY) -> Dataplane:
        """Attach to the data plane that ``spp-primary --file-prefix prefix`` created."""
        dp = cls(prefix, Segment(segment_path(prefix, "dataplane"), 0, create=False))
        dp._join(role)
        return dp

    @classmethod
    def open_primary(cls, prefix: str, layout: Layout | None = None, *,
                     config: dict[str, Any] | None = None) -> tuple[Dataplane, str]:
        """The primary's way in: create the segment, adopt a live one, or replace a stale one.

        Returns the data plane and what happened, in words for the log:

        * no segment: a new one is created;
        * a segment whose members are all gone (a stack that crashed): it is removed
          and a new one created;
        * a segment that live processes still map (the previous primary crashed or
          was stopped while secondaries ran): this primary adopts it as it is (pool,
          rings, counters, configuration), and the secondaries notice nothing.

        Raises :class:`FileExistsError` when another primary holds the stack (a
        live primary member, or the stack lock), :class:`RuntimeError` for a segment
        of another layout version that live processes still use; the messages say
        what to do.
        """
        lock = StackLock(segment_path(prefix, "lock"))
        if not lock.acquire():
            raise FileExistsError(f"another spp-primary is running the stack {prefix!r} (it holds "
                                  f"{lock.path}): stop it first, or pick another --file-prefix")
        try:
            path = segment_path(prefix, "dataplane")
            note = ""
            if path.exists():
                try:
                    old = cls(prefix, Segment(path, 0, create=False))
                except (RuntimeError, ValueError, OSError) as exc:
                    users = mappers(path)
                    if users:
                        raise RuntimeError(
                            f"{path} is not a data plane of this spp version ({exc}) and processes "
                            f"{', '.join(map(str, users))} still use it: stop them, or pick another "
                            "--file-prefix") from None
                    path.unlink(missing_ok=True)
                    dp = cls.create(prefix, layout, config=config)
                    dp._lock = lock
                    return dp, (f"removed {path}, a segment of another spp version that no process used; "
                                f"created the stack {prefix!r}")
                others = members.live(old.members)
                if others:
                    old._join(members.ROLE_PRIMARY)
                    old.seg.owner = True
                    old.header[H_OWNER_PID] = os.getpid()
                    old._lock = lock
                    verb = "uses" if len(others) == 1 else "use"
                    return old, f"adopted the live stack {prefix!r} ({members.describe(others)} still {verb} it)"
                old.seg.close(unlink=True)
                note = f"removed the stale segment {path} (every process that used it is gone); "
            dp = cls.create(prefix, layout, config=config)
            dp._lock = lock
            return dp, note + f"created the stack {prefix!r}"
        except BaseException:
            lock.release()
            raise

    def _join(self, role: int) -> None:
        self._member_row = members.join(self.members, role)

    @property
    def member_row(self) -> int:
        """This process's row in the member table (-1: none)."""
        return self._member_row

    @property
    def owner(self) -> bool:
        return self.seg.owner

    def live_members(self) -> list[members.Member]:
        """Other live processes that map this segment."""
        return members.live(self.members)

    def close(self) -> None:
        """Detach.  The primary also removes the segment, unless other live processes still map it.

        Those are left the segment (listed in :attr:`left_to`): a new primary adopts it.
        """
        members.leave(self.members, self._member_row)
        unlink = self.seg.owner
        if unlink:
            self.left_to = members.live(self.members)
            unlink = not self.left_to
        self.seg.close(unlink=unlink)
        if self._lock is not None:
            self._lock.release(unlink=unlink)
            self._lock = None

    # -- pool ---------------------------------------------------------------

    def alloc(self, out: np.ndarray, n: int | None = None) -> int:
        """Fill ``out[:n]`` (default: all of it) with fresh buffers; return how many."""
        return int(pool_alloc(self.pool_ctrl, self.pool_slots, self.refcnt, self.meta, out, 0,
                              len(out) if n is None else n))

    def free(self, ids: np.ndarray, n: int | None = None) -> None:
        """Drop a reference to each of ``ids[:n]``.  The array's contents are consumed."""
        pool_free(self.pool_ctrl, self.pool_slots, self.refcnt, self.header, ids, 0,
                  len(ids) if n is None else n)

    def ref(self, ids: np.ndarray, n: int | None = None) -> None:
        """Add a reference to each of ``ids[:n]`` (share without copying)."""
        pool_ref(self.refcnt, ids, 0, len(ids) if n is None else n)

    @property
    def free_count(self) -> int:
        """Free buffers now (exact when no one is allocating or freeing)."""
        return int(ringcore.ring_count(self.pool_ctrl))

    @property
    def in_use(self) -> int:
        return self.n_bufs - self.free_count

    @property
    def double_frees(self) -> int:
        return int(self.header[H_DOUBLE_FREE])

    # -- frames -------------------------------------------------------------

    def frame(self, b: int) -> bytes:
        """Bytes of buffer ``b``'s frame (a copy; for tests and slow paths)."""
        off, ln = int(self.meta[b, M_OFF]), int(self.meta[b, M_LEN])
        return bytes(self.data[b, off : off + ln])

    def write_frame(self, b: int, frame: bytes) -> None:
        """Store ``frame`` in buffer ``b`` at the default headroom."""
        if len(frame) > DATA_ROOM:
            raise ValueError(f"frame of {len(frame)} bytes exceeds the data room ({DATA_ROOM})")
        self.data[b, HEADROOM : HEADROOM + len(frame)] = np.frombuffer(frame, np.uint8)
        self.meta[b, M_OFF] = HEADROOM
        self.meta[b, M_LEN] = len(frame)

    # -- rings --------------------------------------------------------------

    def check_ring(self, n: int) -> None:
        if not 0 <= n < self.layout.n_rings:
            raise ValueError(f"ring:{n} out of range: this stack has ring:0..ring:{self.layout.n_rings - 1}")

    # -- port slots ---------------------------------------------------------

    def port_slot(self, ptype: str, index: int) -> int:
        """Row of ``stats`` for port ``ptype:index``."""
        if ptype not in PORT_TYPES:
            raise ValueError(f"unknown port type {ptype!r}; known: {', '.join(PORT_TYPES)}")
        base = 0
        for t in PORT_TYPES:
            limit = self.layout.n_rings if t == "ring" else PER_TYPE_SLOTS
            if t == ptype:
                if not 0 <= index < limit:
                    raise ValueError(f"{ptype}:{index} out of range: index must be 0..{limit - 1}")
                return base + index
            base += limit
        raise AssertionError  # pragma: no cover

    def slot_name(self, slot: int) -> str:
        """Inverse of :meth:`port_slot`."""
        base = 0
        for t in PORT_TYPES:
            limit = self.layout.n_rings if t == "ring" else PER_TYPE_SLOTS
            if slot < base + limit:
                return f"{t}:{slot - base}"
            base += limit
        raise ValueError(f"no port slot {slot}")

    # -- config (the primary's facts, e.g. its phy interfaces) ---------------

    def set_config(self, config: dict[str, Any]) -> None:
        raw = json.dumps(config).encode()
        if len(raw) > CONFIG_BYTES:
            raise ValueError("stack configuration too large")
        self.header[H_CONFIG_LEN] = 0
        self.config_bytes[: len(raw)] = np.frombuffer(raw, np.uint8)
        self.header[H_CONFIG_LEN] = len(raw)
        self.header[H_CONFIG_GEN] += 1

    def config(self) -> dict[str, Any]:
        n = int(self.header[H_CONFIG_LEN])
        if n == 0:
            return {}
        result: dict[str, Any] = json.loads(bytes(self.config_bytes[:n]))
        return result
