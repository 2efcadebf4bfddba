"""``phy:N`` — a Linux network interface through AF_PACKET with memory-mapped rings.

Which interface: option ``iface=NAME`` if given, else entry ``N`` of the primary's
interface list ``dp.config()["phy"]`` (spp-primary ``--phy veth0,veth1`` writes it).

Receive uses a **TPACKET_V3** ring (blocks of frames the kernel hands over whole): a
compiled loop walks the ready blocks, copies each frame into a fresh pool buffer and
returns each block to the kernel once every frame in it was consumed (a burst may end
in the middle of a block; the position is kept).  A block is handed over when full or
after ``RETIRE_MS`` of quiet, which bounds the latency at low rates.  On veth the
kernel takes the 802.1Q tag out of the frame into the ring header; the loop puts it
back in front of the EtherType (using the buffer's headroom) and records the TCI in
``meta[M_TCI]``.

Transmit uses a second socket with a **TPACKET_V2** tx ring (bypassing the qdisc):
the loop copies frames into free slots in ring order (the slot index wraps like the
kernel's), marks them ``TP_STATUS_SEND_REQUEST``, and one non-blocking ``send`` per
burst tells the kernel to transmit them.  A slot the kernel has not finished sending
stops the burst: ``tx_burst`` returns the accepted prefix and the caller counts the
rest as ``tx_full``.  The rx socket sets ``PACKET_IGNORE_OUTGOING``, so what we send
is not received back.

Accounting (every lost frame is counted once, on this port's row):

* rx: frame < 14 bytes → ``runt``; longer than ``DATA_ROOM`` (with a restored tag) or
  truncated by the ring → ``too_long``; no free buffer → ``nombuf`` (the frame is
  consumed so the ring keeps moving); frames the kernel dropped because our rx ring was
  full (``PACKET_STATISTICS``, read at most every 0.5 s and on close) → ``ring_full``.
* tx: runt → ``runt``; longer than MTU + 14 (+4 for a tagged frame) → ``too_long``;
  these are *accepted* (the port takes, frees and counts them) so a bad frame cannot
  block the frames behind it.
* link: when the interface is administratively down or deleted, rx returns 0 and tx
  **accepts** the burst, frees it and counts ``link_down`` (decision: a dead link must
  not back-pressure the caller's buffers, and the caller's ``tx_full`` would misname
  the cause).
  Frames still waiting in the rx ring when the interface disappears are counted
  ``link_down`` too (``stopped`` when the port is closed).  The link is checked at
  most every 0.5 s (``SIOCGIFINDEX`` + ``SIOCGIFFLAGS``, two cheap ioctls) and
  immediately when a send fails; a deleted interface that comes back (same name) is
  reopened.  :meth:`PhyPort.describe` says ``"link": "up" | "down" | "gone"`` (``down``
  also when the interface is up without carrier: the kernel then still takes frames, as
  a NIC without a cable would, so tx is only refused while the interface is not
  ``IFF_UP``; the carrier flag also lags a new veth by up to a second).

Multi-queue: every rx socket spp opens on an interface joins the ``PACKET_FANOUT``
group ``ifindex & 0xffff`` in hash mode, so ``phy:0``, ``phy:0nq1``, ... (in one process or
several) split the received traffic by flow hash, like the rx queues of a NIC; each
queue has its own tx ring.  Counters are per ``phy:N`` (all queues add to one row).
Pass ``fanout=False`` to receive everything on one socket regardless of others.  The
rx socket only exists once the port is used for receiving (first ``rx_burst`` or
``fileno()``), so a process that only transmits on ``phy:0`` takes no share.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import socket
import struct
import threading
import time
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.af_xdp import XS_FD, XS_KICK, XS_MTU, XS_UP, xdp_rx_at, xdp_tx_at
from spp.ports.base import Port, PortError, PortId, register_driver
from spp.ports.burst_tail import TX_OK, TX_RUNT, rx_burst_tail, tx_burst_tail, tx_fits
from spp.ports.csum import TP_STATUS_CSUMNOTREADY, complete_l4_checksum
from spp.ports.native import KIND_PHY
from spp.runtime import quiesce
from spp.runtime.atomics import load_acquire, store_release
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, HEADROOM, Dataplane, pool_alloc
from spp.runtime.libc import EAGAIN, ENETDOWN, ENODEV, ENXIO, send_kick
from spp.runtime.rawmem import copy_bytes, raw_array
from spp.runtime.stats import ERRORS, N_FIELDS, REASON, stat_add

log = logging.getLogger(__name__)

# --- Linux ABI (linux/if_packet.h) ---------------------------------------------
ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_RX_RING: Final = 5
PACKET_STATISTICS: Final = 6
PACKET_VERSION: Final = 10
PACKET_TX_RING: Final = 13
PACKET_LOSS: Final = 14
PACKET_FANOUT: Final = 18
PACKET_QDISC_BYPASS: Final = 20
PACKET_IGNORE_OUTGOING: Final = 23
TPACKET_V2: Final = 1
TPACKET_V3: Final = 2
PACKET_FANOUT_HASH: Final = 0
SIOCGIFFLAGS: Final = 0x8913
SIOCGIFINDEX: Final = 0x8933
SO_SNDBUFFORCE: Final = 32
IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40

TP_STATUS_USER: Final = 0x1
TP_STATUS_VLAN_VALID: Final = 0x10
TP_STATUS_VLAN_TPID_VALID: Final = 0x40
TP_STATUS_AVAILABLE: Final = 0
TP_STATUS_SEND_REQUEST: Final = 1
TP_STATUS_WRONG_FORMAT: Final = 4
#: Where a TPACKET_V2 tx frame's data starts in its slot (TPACKET2_HDRLEN - sizeof(sockaddr_ll)).
TX_DATA_OFF: Final = 32

# --- ring geometry ----------------------------------------------------------------
RX_BLOCK_SIZE: Final = 1 << 17
RX_BLOCKS: Final = 32
RX_FRAME_SIZE: Final = 2048  # only sizes tp_frame_nr for V3
RETIRE_MS: Final = 2
TX_FRAME_SIZE: Final = 2304  # 16 slots = 9 pages; room for DATA_ROOM + header
TX_BLOCK_SIZE: Final = TX_FRAME_SIZE * 16
TX_BLOCKS: Final = 32
CHECK_INTERVAL: Final = 0.5

_RUNT: Final = REASON["runt"]
_TOO_LONG: Final = REASON["too_long"]
_NOMBUF: Final = REASON["nombuf"]
RX_RING_BYTES: Final = RX_BLOCK_SIZE * RX_BLOCKS
TX_RING_BYTES: Final = TX_BLOCK_SIZE * TX_BLOCKS
TX_FRAMES: Final = TX_RING_BYTES // TX_FRAME_SIZE
#: The tx ring's state words (``_Tx.state``, int64), read and written by the compiled kernel:
#: next slot, frames queued by the last burst, the last kick's outcome (:data:`KICK_LINK`: the
#: interface went away, look at it), the interface's MTU, 1 while the interface is up, the socket.
TXS_HEAD, TXS_QUEUED, TXS_KICK, TXS_MTU, TXS_UP, TXS_FD = range(6)
TXS_LEN: Final = 8
KICK_LINK: Final = 1
#: Columns of a phy port's row for the compiled worker loop (:meth:`PhyPort.native_view`):
#: rx ring and state addresses, tx ring and state addresses (0: that direction has no socket),
#: the driver (:data:`DRV_AF_PACKET`; :data:`DRV_AF_XDP`: ``PH_RX``/``PH_TX`` are then the
#: address of the AF_XDP state array, :mod:`spp.ports.af_xdp`).
PH_RX, PH_RXS, PH_TX, PH_TXS, PH_DRV = range(5)
PH_COLS: Final = 5
DRV_AF_PACKET: Final = 0
DRV_AF_XDP: Final = 1
# The AF_XDP state keeps the link facts where the AF_PACKET tx state has them (one link code).
assert (XS_KICK, XS_MTU, XS_UP, XS_FD) == (TXS_KICK, TXS_MTU, TXS_UP, TXS_FD)
_NO_NRT: dict[str, Any] = {"_nrt": False}


# --- compiled ring walks ----------------------------------------------------------


@njit(cache=True, nogil=True, **_NO_NRT)
def v3_rx(r8: np.ndarray, r16: np.ndarray, r32: np.ndarray, st: np.ndarray, bsize: int, bnr: int,
          pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray,
          data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """Move up to ``n`` frames from a TPACKET_V3 rx ring into fresh buffers ``out[:k]``; return ``k``.

    ``st`` = [block, frame index in block, byte offset of that frame in the block].
    Rejected frames are consumed and counted on ``stats[slot]`` (runt, too_long, nombuf).
    """
    blk = st[0]
    idx = st[1]
    off = st[2]
    # Count what is ready (whole blocks owned by us), at most n.
    avail = 0
    b = blk
    seen = 0
    while avail < n and seen < bnr:
        w = b * bsize // 4
        if load_acquire(r32, w + 2) & TP_STATUS_USER == 0:
            break
        num = r32[w + 3]
        if seen == 0:
            avail += num - idx
        else:
            avail += num
        if num == 0 and seen == 0:
            # An empty block handed to us (should not happen): give it straight back.
            store_release(r32, w + 2, 0)
            blk = (blk + 1) % bnr
            idx = 0
            off = 0
            b = blk
            continue
        seen += 1
        b = (b + 1) % bnr
    if avail <= 0:
        st[0] = blk
        st[1] = idx
        st[2] = off
        return 0
    want = min(avail, n)
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, want)
    k = 0
    nbytes = 0
    runt = 0
    toolong = 0
    nomb = 0
    done = 0
    while done < want:
        base = blk * bsize
        w = base // 4
        num = r32[w + 3]
        if idx == 0:
            off = r32[w + 4]
        h = base + off
        hw = h // 4
        next_off = r32[hw]
        snap = r32[hw + 3]
        ln = r32[hw + 4]
        status = r32[hw + 5]
        mac = r16[h // 2 + 12]
        vlan = (status & TP_STATUS_VLAN_VALID) != 0
        extra = 4 if vlan else 0
        if ln < ETHER_MIN:
            runt += 1
        elif ln + extra > DATA_ROOM or snap < ln:
            toolong += 1
        elif k >= got:
            nomb += 1
        else:
            bid = out[k]
            src = h + mac
            if vlan:
                tci = r32[hw + 8] & 0xFFFF
                tpid = 0x8100
                if status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = r16[(h + 36) // 2]
                o = HEADROOM - 4
                row0 = bid * data.shape[1]
                copy_bytes(data, row0 + o, r8, src, 12)
                data[bid, o + 12] = (tpid >> 8) & 0xFF
                data[bid, o + 13] = tpid & 0xFF
                data[bid, o + 14] = (tci >> 8) & 0xFF
                data[bid, o + 15] = tci & 0xFF
                copy_bytes(data, row0 + o + 16, r8, src + 12, ln - 12)
                meta[bid, 0] = o
                meta[bid, 1] = ln + 4
                meta[bid, 3] = tci
            else:
                copy_bytes(data, bid * data.shape[1] + HEADROOM, r8, src, ln)
                meta[bid, 0] = HEADROOM
                meta[bid, 1] = ln
            meta[bid, 2] = slot
            if status & TP_STATUS_CSUMNOTREADY:  # partial checksum left for offload: finish it
                complete_l4_checksum(data[bid], meta[bid, 0], meta[bid, 1])
            nbytes += ln + extra
            k += 1
        done += 1
        idx += 1
        if idx >= num:
            store_release(r32, w + 2, 0)  # TP_STATUS_KERNEL: the block is the kernel's again
            blk = (blk + 1) % bnr
            idx = 0
            off = 0
        else:
            off += next_off
    st[0] = blk
    st[1] = idx
    st[2] = off
    rx_burst_tail(pctrl, pslots, refcnt, header, out, got, k, stats[slot], nbytes, runt, _TOO_LONG, toolong,
                  _NOMBUF, nomb)
    return k


@njit(cache=True, nogil=True)
def v3_drain(r32: np.ndarray, st: np.ndarray, bsize: int, bnr: int) -> int:
    """Give every ready block back to the kernel; return how many frames were in them (lost)."""
    lost = 0
    for _ in range(bnr):
        blk = st[0]
        w = blk * bsize // 4
        if load_acquire(r32, w + 2) & TP_STATUS_USER == 0:
            break
        lost += r32[w + 3] - st[1]
        store_release(r32, w + 2, 0)
        st[0] = (blk + 1) % bnr
        st[1] = 0
        st[2] = 0
    return lost


@njit(cache=True, nogil=True, **_NO_NRT)
def v2_tx(r8: np.ndarray, r32: np.ndarray, st: np.ndarray, fsize: int, fnr: int, mtu: int,
          pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray,
          data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int, scratch: np.ndarray) -> int:
    """Copy ``ids[:n]`` into free TPACKET_V2 tx slots; return the accepted prefix length ``k``.

    Accepted = queued for sending, or rejected as runt/too_long (counted); all ``k`` are
    freed.  ``st[0]`` is the next slot; ``st[1]`` is set to how many were queued.
    """
    head = st[0]
    k = 0
    queued = 0
    nbytes = 0
    runt = 0
    toolong = 0
    while k < n:
        b = ids[k]
        fit = tx_fits(data, meta, b, mtu, fsize - TX_DATA_OFF)
        if fit != TX_OK:
            if fit == TX_RUNT:
                runt += 1
            else:
                toolong += 1
            k += 1
            continue
        off = meta[b, 0]
        ln = meta[b, 1]
        base = head * fsize
        s = load_acquire(r32, base // 4)
        if s not in (TP_STATUS_AVAILABLE, TP_STATUS_WRONG_FORMAT):
            break
        copy_bytes(r8, base + TX_DATA_OFF, data, b * data.shape[1] + off, ln)
        r32[base // 4 + 1] = ln  # tp_len
        r32[base // 4 + 2] = ln  # tp_snaplen
        store_release(r32, base // 4, TP_STATUS_SEND_REQUEST)
        head = (head + 1) % fnr
        queued += 1
        nbytes += ln
        k += 1
    st[0] = head
    st[1] = queued
    tx_burst_tail(pctrl, pslots, refcnt, header, ids, k, scratch, stats[slot], queued, nbytes, runt, _TOO_LONG,
                  toolong)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def phy_tx(r8: np.ndarray, r32: np.ndarray, st: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
           refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int,
           ids: np.ndarray, n: int, scratch: np.ndarray) -> int:
    """A phy port's transmit: :func:`v2_tx` into the ring, then the kick; the accepted prefix length.

    -1: the interface is not up (``st[TXS_UP]`` 0): nothing taken, the caller counts
    ``link_down``.  The kick (``send`` of nothing, non-blocking) goes out when frames were
    queued or the ring was full (frames a failed kick left queued must go out too); a kick
    that finds the interface gone sets ``st[TXS_KICK]`` (the port looks at the link), any
    other failure but "try again" counts an error.  The Python port and the compiled
    worker loop both transmit through here.
    """
    if st[TXS_UP] == 0:
        return -1
    k: int = v2_tx(r8, r32, st, TX_FRAME_SIZE, TX_FRAMES, st[TXS_MTU], pctrl, pslots, refcnt, header, meta, data,
                   stats, slot, ids, n, scratch)
    if st[TXS_QUEUED] or k < n:
        r = send_kick(st[TXS_FD])
        if r < 0 and r != -EAGAIN:
            if r in (-ENETDOWN, -ENXIO, -ENODEV):
                st[TXS_KICK] = KICK_LINK
            else:
                stat_add(stats[slot], ERRORS, 1)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def phy_rx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """:func:`v3_rx` on the ring a compiled worker reaches by address (``row``: ``PH_*`` columns).

    An AF_XDP row (``row[PH_DRV]``) goes to :func:`spp.ports.af_xdp.xdp_rx_at`.
    """
    a = row[PH_RX]
    if a == 0:
        return 0
    if row[PH_DRV] == DRV_AF_XDP:
        kx: int = xdp_rx_at(a, pctrl, pslots, refcnt, header, meta, data, stats, slot, out, n)
        return kx
    r32 = raw_array(a, RX_RING_BYTES >> 2, np.uint32)
    st = raw_array(row[PH_RXS], 4, np.int64)
    if load_acquire(r32, st[0] * (RX_BLOCK_SIZE >> 2) + 2) & TP_STATUS_USER == 0:
        return 0
    k: int = v3_rx(raw_array(a, RX_RING_BYTES, np.uint8), raw_array(a, RX_RING_BYTES >> 1, np.uint16), r32, st,
                   RX_BLOCK_SIZE, RX_BLOCKS, pctrl, pslots, refcnt, header, meta, data, stats, slot, out, n)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def phy_tx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
              scratch: np.ndarray) -> int:
    """:func:`phy_tx` on the ring a compiled worker reaches by address; -1 also when there is no tx socket.

    An AF_XDP row goes to :func:`spp.ports.af_xdp.xdp_tx_at`.
    """
    a = row[PH_TX]
    if a == 0:
        return -1
    if row[PH_DRV] == DRV_AF_XDP:
        kx: int = xdp_tx_at(a, pctrl, pslots, refcnt, header, meta, data, stats, slot, ids, n, scratch)
        return kx
    k: int = phy_tx(raw_array(a, TX_RING_BYTES, np.uint8), raw_array(a, TX_RING_BYTES >> 2, np.uint32),
                    raw_array(row[PH_TXS], TXS_LEN, np.int64), pctrl, pslots, refcnt, header, meta, data, stats,
                    slot, ids, n, scratch)
    return k


# --- sockets and rings -------------------------------------------------------------


class _Ring:
    """A packet socket's mmapped ring with uint8/16/32 views (views dropped before unmapping)."""

    def __init__(self, sock: socket.socket, size: int) -> None:
        self.mm = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.r8: np.ndarray = np.frombuffer(self.mm, np.uint8)
        self.r16: np.ndarray = np.frombuffer(self.mm, np.uint16)
        self.r32: np.ndarray = np.frombuffer(self.mm, np.uint32)
        self.mm_addr = int(self.r8.__array_interface__["data"][0])

    def close(self) -> None:
        del self.r8, self.r16, self.r32
        try:
            self.mm.close()
        except BufferError:
            # A stray view (e.g. held by a compile in progress) still exists: let the GC unmap it.
            import gc

            gc.collect()
            with contextlib.suppress(BufferError):
                self.mm.close()


def _ifflags(sock: socket.socket, iface: str) -> int:
    req = struct.pack("16sH14x", iface.encode(), 0)
    res = fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, req)
    return int(struct.unpack_from("16sH", res)[1])


def _mtu(iface: str) -> int:
    try:
        with open(f"/sys/class/net/{iface}/mtu") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1500


class _Rx:
    """The receive socket with its V3 ring."""

    def __init__(self, iface: str, queue_group: int | None) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            s = self.sock
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            req = struct.pack("7I", RX_BLOCK_SIZE, RX_BLOCKS, RX_FRAME_SIZE,
                              RX_BLOCK_SIZE * RX_BLOCKS // RX_FRAME_SIZE, RETIRE_MS, 0, 0)
            s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            self.ring = _Ring(s, RX_BLOCK_SIZE * RX_BLOCKS)
            s.bind((iface, ETH_P_ALL))
            if queue_group is not None:
                s.setsockopt(SOL_PACKET, PACKET_FANOUT, (queue_group & 0xFFFF) | (PACKET_FANOUT_HASH << 16))
            s.setblocking(False)
        except BaseException:
            self.close()
            raise
        self.state = np.zeros(4, np.int64)

    def kernel_drops(self) -> int:
        """Frames the kernel dropped since the last call (our ring was full)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        return int(struct.unpack("3I", raw)[1])

    def close(self) -> None:
        ring = getattr(self, "ring", None)
        if ring is not None:
            ring.close()
            del self.ring
        self.sock.close()


class _Tx:
    """The transmit socket with its V2 ring."""

    def __init__(self, iface: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            s = self.sock
            s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            s.setsockopt(SOL_PACKET, PACKET_LOSS, 1)
            with contextlib.suppress(OSError):
                s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
            self.nframes = TX_BLOCK_SIZE * TX_BLOCKS // TX_FRAME_SIZE
            s.setsockopt(SOL_PACKET, PACKET_TX_RING,
                         struct.pack("4I", TX_BLOCK_SIZE, TX_BLOCKS, TX_FRAME_SIZE, self.nframes))
            self.ring = _Ring(s, TX_BLOCK_SIZE * TX_BLOCKS)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)
            s.bind((iface, 0))  # protocol 0: this socket receives nothing
            s.setblocking(False)
        except BaseException:
            self.close()
            raise
        self.state = np.zeros(TXS_LEN, np.int64)
        self.state[TXS_MTU] = _mtu(iface)
        self.state[TXS_FD] = s.fileno()

    def close(self) -> None:
        ring = getattr(self, "ring", None)
        if ring is not None:
            ring.close()
            del self.ring
        self.sock.close()


class PhyPort(Port):
    """A Linux interface through AF_PACKET rings; see the module docstring.

    Each direction's socket is opened on first use (rx: the first ``rx_burst`` or
    ``fileno()``; frames arriving before that are not captured, like a NIC queue not yet
    started): a process that only transmits on ``phy:0`` never joins the receive fanout
    group, where it would take a share of the traffic and never read it.  Interface
    lookups go through a control socket made when the port is opened, so the port keeps
    looking in the namespace it was opened in, whatever thread uses it.
    """

    ptype = "phy"
    native_kind = KIND_PHY

    def __init__(self, dp: Dataplane, pid: PortId, iface: str | None = None, fanout: bool = True) -> None:
        super().__init__(dp, pid)
        self.iface = iface if iface is not None else _iface_from_config(dp, pid)
        if not self.iface or len(self.iface) > 15 or "/" in self.iface:
            raise PortError(f"{pid}: invalid interface name {self.iface!r} (1..15 characters, no '/')")
        self.fanout = fanout
        #: Where this port counts: phy:N's shared row, or, for an observer outside the fanout
        #: (spp-pcap's capture socket: the kernel hands it a copy of frames another process
        #: also receives), a private row, so the port's shared counters never count a frame twice.
        self._stab, self._sslot = dp.stats, self.slot
        if not fanout:
            self._stab, self._sslot = np.zeros((1, N_FIELDS), np.int64), 0
            self.stats = self._stab[0]
        self.link = "gone"
        self.admin_up = False
        self.ifindex = 0
        self._rxs: _Rx | None = None
        self._txs: _Tx | None = None
        self._use_rx = False
        self._use_tx = False
        self._rx_lock = threading.Lock()
        self._tx_lock = threading.Lock()
        self._mgmt_lock = threading.Lock()
        self._next_check = 0.0
        self._scratch = np.empty(256, np.int32)
        self.reopens = 0
        self.driver_note = ""
        self._retired: list[tuple[_Rx | None, _Tx | None, str]] = []
        try:
            # Fails early without CAP_NET_RAW; also our handle on this namespace's interfaces.
            self._ctl = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except OSError as e:
            raise PortError(f"{pid}: cannot open an AF_PACKET socket: {e.strerror} "
                            f"(needs root / CAP_NET_RAW)") from None
        self.ifindex = self._lookup()
        if not self.ifindex:
            self._ctl.close()
            raise PortError(f"{pid}: interface {self.iface!r} does not exist; create it first "
                            f"(e.g. ip link add {self.iface} type veth peer name {self.iface}p) "
                            f"or give spp-primary --phy the name of an existing interface")
        self._read_flags()
        self._next_check = time.monotonic() + CHECK_INTERVAL

    # -- interface facts ----------------------------------------------------------

    def _lookup(self) -> int:
        """The interface's index in the port's namespace, 0 if it does not exist."""
        try:
            res = fcntl.ioctl(self._ctl.fileno(), SIOCGIFINDEX, struct.pack("16si12x", self.iface.encode(), 0))
        except OSError:
            return 0
        return int(struct.unpack_from("16si", res)[1])

    def _read_flags(self) -> None:
        """Set ``link`` (``up``: IFF_UP and IFF_RUNNING) and ``admin_up`` (IFF_UP) from the interface."""
        try:
            fl = _ifflags(self._ctl, self.iface)
        except OSError:
            fl = 0
        self.admin_up = bool(fl & IFF_UP)
        self.link = "up" if fl & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING) else "down"
        if self._txs is not None:
            self._txs.state[TXS_UP] = int(self.admin_up)

    # -- sockets (opened on first use, per direction) --------------------------------

    def _open_rx(self) -> None:
        self._rxs = _Rx(self.iface, self.ifindex & 0xFFFF if self.fanout else None)
        self._callbacks_changed()  # compiled workers rebuild their plans: the ring's address is new

    def _open_tx(self) -> None:
        tx = _Tx(self.iface)
        tx.state[TXS_UP] = int(self.admin_up)
        self._txs = tx
        self._callbacks_changed()

    def _teardown(self, reason: str = "link_down") -> None:
        """Take both sockets out of use; :meth:`_reap` closes them once no worker can still use them.

        Frames still in the rx ring then are counted under ``reason``.  Call ``_reap``
        after releasing the port's locks (it waits for the workers' grace period).
        """
        rx, tx = self._rxs, self._txs
        self._rxs = self._txs = None
        if rx is not None or tx is not None:
            self._retired.append((rx, tx, reason))
            self._callbacks_changed()  # compiled workers drop the old addresses at their next pass

    def _reap(self) -> None:
        """Close retired sockets once every worker passed a quiescent point (their rings stay
        mapped until then: a compiled worker may be in the middle of a burst on them)."""
        if not self._retired or not quiesce.synchronize():
            if self._retired:
                log.warning("%s: a worker did not pass a quiescent point in time; old rings stay mapped", self.id)
            return
        with self._mgmt_lock:
            retired, self._retired = self._retired, []
        for rx, tx, reason in retired:
            if rx is not None:
                lost = int(v3_drain(rx.ring.r32, rx.state, RX_BLOCK_SIZE, RX_BLOCKS))
                if lost:
                    self.count_drop(reason, lost)
                with contextlib.suppress(OSError):
                    drops = rx.kernel_drops()
                    if drops:
                        self.count_drop("ring_full", drops)
                rx.close()
            if tx is not None:
                tx.close()

    def check_link(self, force: bool = False) -> str:
        """Re-check the interface (at most every 0.5 s unless ``force``); reopen if it came back."""
        now = time.monotonic()
        if not force and now < self._next_check:
            return self.link
        try:
            return self._check_link(now)
        finally:
            self._reap()

    def _check_link(self, now: float) -> str:
        with self._mgmt_lock:
            if self.closed:
                return self.link
            self._next_check = now + CHECK_INTERVAL
            idx = self._lookup()
            with self._rx_lock, self._tx_lock:
                if idx == 0:
                    self._teardown()
                    self.link = "gone"
                    self.admin_up = False
                    return self.link
                if idx != self.ifindex or self.link == "gone":
                    # Deleted and created again (same name, maybe another index): start over.
                    self._teardown()
                    self.ifindex = idx
                    self.reopens += 1
                self._read_flags()
                try:
                    if self._use_rx and self._rxs is None:
                        self._open_rx()
                    if self._use_tx and self._txs is None:
                        self._open_tx()
                except OSError:
                    self._teardown()
                    self.link = "gone"
                    self.admin_up = False
                    return self.link
                if self._rxs is not None:
                    with contextlib.suppress(OSError):
                        drops = self._rxs.kernel_drops()
                        if drops:
                            self.count_drop("ring_full", drops)
                if self._txs is not None:
                    self._txs.state[TXS_MTU] = _mtu(self.iface)
            return self.link

    # -- data path ------------------------------------------------------------

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        if time.monotonic() >= self._next_check:
            self.check_link()
        with self._rx_lock:
            rx = self._rxs
            if rx is None:
                if self.closed or self.link == "gone":
                    return 0
                self._use_rx = True
                try:
                    self._open_rx()
                except OSError:
                    self._next_check = 0.0  # look at the interface on the next call
                    return 0
                rx = self._rxs
                assert rx is not None
            r = rx.ring
            if not r.r32[int(rx.state[0]) * (RX_BLOCK_SIZE // 4) + 2] & TP_STATUS_USER:
                return 0  # nothing ready: skip the compiled call (its argument unboxing costs µs)
            dp = self.dp
            return int(v3_rx(r.r8, r.r16, r.r32, rx.state, RX_BLOCK_SIZE, RX_BLOCKS, dp.pool_ctrl,
                             dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, self._stab, self._sslot, bufs, n))

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        if time.monotonic() >= self._next_check:
            self.check_link()
        with self._tx_lock:
            tx = self._txs
            if tx is None and not self.closed and self.admin_up:
                self._use_tx = True
                try:
                    self._open_tx()
                except OSError:
                    self._next_check = 0.0
                tx = self._txs
            if tx is None:
                return self._drop_link_down(bufs, n)
            if len(self._scratch) < n:
                self._scratch = np.empty(max(n, 2 * len(self._scratch)), np.int32)
            dp = self.dp
            k = int(phy_tx(tx.ring.r8, tx.ring.r32, tx.state, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header,
                           dp.meta, dp.data, self._stab, self._sslot, bufs, n, self._scratch))
            if k < 0:
                return self._drop_link_down(bufs, n)
        self.after_native()
        return k

    # -- the compiled worker loop's view ------------------------------------------------

    def native_view(self, rx: bool, tx: bool) -> np.ndarray:
        """The port's row for a compiled worker (``PH_*`` columns), opening the directions it uses.

        An address is 0 while that direction has no socket (link gone, not up yet): rx
        then receives nothing and tx counts ``link_down``.  Addresses stay valid until the
        plan generation changes and a grace period has passed (:meth:`_reap`).
        """
        row = np.zeros(PH_COLS, np.int64)
        with self._mgmt_lock, self._rx_lock, self._tx_lock:
            if not self.closed and self.link != "gone":
                try:
                    if rx:
                        self._use_rx = True
                        if self._rxs is None:
                            self._open_rx()
                    if tx:
                        self._use_tx = True
                        if self._txs is None and self.admin_up:
                            self._open_tx()
                except OSError:
                    self._next_check = 0.0
            if rx and self._rxs is not None:
                row[PH_RX] = self._rxs.ring.mm_addr
                row[PH_RXS] = self._rxs.state.__array_interface__["data"][0]
            if tx and self._txs is not None:
                row[PH_TX] = self._txs.ring.mm_addr
                row[PH_TXS] = self._txs.state.__array_interface__["data"][0]
        return row

    def after_native(self) -> None:
        """After bursts (compiled or not): look at the link when due or when a kick found it gone."""
        tx = self._txs
        if tx is not None and tx.state[TXS_KICK]:
            tx.state[TXS_KICK] = 0
            self.check_link(force=True)
        elif time.monotonic() >= self._next_check:
            self.check_link()

    def _drop_link_down(self, bufs: np.ndarray, n: int) -> int:
        self.count_drop("link_down", n)
        self.dp.free(bufs[:n].copy(), n)
        return n

    def fileno(self) -> int | None:
        """The rx socket (opened now if rx was not used yet); ``None`` while the link is gone."""
        with self._rx_lock:
            if self._rxs is None and not self.closed and self.link != "gone":
                self._use_rx = True
                with contextlib.suppress(OSError):
                    self._open_rx()
            rx = self._rxs
            return rx.sock.fileno() if rx is not None else None

    def close(self) -> None:
        with self._mgmt_lock, self._rx_lock, self._tx_lock:
            if not self.closed:
                self._teardown("stopped")
                self._ctl.close()
                self.link = "gone"
                self.admin_up = False
            self.closed = True
        self._reap()

    def describe(self) -> dict[str, Any]:
        return {
            "port": str(self.id),
            "driver": "af_packet",
            "iface": self.iface,
            "ifindex": self.ifindex,
            "queue": self.id.queue,
            "link": self.link,
            "fanout_group": (self.ifindex & 0xFFFF) if self.fanout else None,
            "rx_ring": f"TPACKET_V3 {RX_BLOCKS}x{RX_BLOCK_SIZE} B, retire {RETIRE_MS} ms",
            "tx_ring": f"TPACKET_V2 {TX_FRAMES} slots",
            "rx_open": self._rxs is not None,
            "tx_open": self._txs is not None,
            "reopens": self.reopens,
            **({"driver_note": self.driver_note} if self.driver_note else {}),
        }


def _iface_from_config(dp: Dataplane, pid: PortId) -> str:
    phys = dp.config().get("phy", [])
    if not isinstance(phys, list) or not all(isinstance(p, str) for p in phys):
        raise PortError(f"{pid}: the stack's 'phy' config must be a list of interface names, got {phys!r}")
    if not 0 <= pid.index < len(phys):
        have = ", ".join(f"phy:{i}={n}" for i, n in enumerate(phys)) or "none"
        raise PortError(f"{pid}: the primary has no interface {pid.index} (it has: {have}); "
                        f"start spp-primary with --phy IF0,IF1,... or open the port with iface=NAME")
    return str(phys[pid.index])


PHY_DRIVERS: Final = ("auto", "af_xdp", "af_packet")


@register_driver("phy")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    """Option ``driver`` (else the stack's ``phy_driver`` config, spp-primary ``--phy-driver``;
    else ``af_packet``): ``af_xdp``, ``af_packet`` or ``auto`` (AF_XDP where the kernel and
    the interface allow it, else AF_PACKET, saying why)."""
    opts = dict(opts)
    driver = opts.pop("driver", None) or dp.config().get("phy_driver") or "af_packet"
    if driver not in PHY_DRIVERS:
        raise PortError(f"{pid}: unknown phy driver {driver!r}; choose from: {', '.join(PHY_DRIVERS)}")
    if driver == "af_packet":
        return PhyPort(dp, pid, **opts)
    from spp.ports.af_xdp import XdpError
    from spp.ports.phy_xdp import XdpPhyPort

    try:
        return XdpPhyPort(dp, pid, **opts, forced=driver == "af_xdp")
    except XdpError as e:
        if driver == "af_xdp":
            raise PortError(f"{pid}: AF_XDP is not possible: {e}") from None
        log.warning("%s: driver af_packet (AF_XDP is not possible: %s)", pid, e)
        port = PhyPort(dp, pid, **opts)
        port.driver_note = f"AF_XDP not possible: {e}"
        return port
