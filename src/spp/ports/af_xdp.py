"""The AF_XDP driver of ``phy:N`` (``driver=af_xdp``, spp-primary ``--phy-driver af_xdp|auto``).

Debian's libxdp (``libxdp1``, through ctypes) creates the UMEM and the XDP socket and
attaches its default XDP program (redirect queue ``N``'s frames to the socket); the
rings' per-frame work is compiled (:func:`xdp_rx`, :func:`xdp_tx`) and runs in the
worker loop through :func:`spp.ports.phy.phy_rx_at` / ``phy_tx_at``, which branch on the
row's driver column (:data:`spp.ports.phy.PH_DRV`).

UMEM: a private anonymous mapping of :data:`N_FRAMES` 4 KiB chunks (aligned mode, 40
MiB): the first :data:`N_RX` are the receive part — every chunk sits in the fill ring or
the rx ring — and the last :data:`N_TX` the transmit part, whose free chunks are a
stack in the state array.  Receive **copies** each frame from its chunk into a fresh pool buffer and hands
the chunk straight back to the fill ring; transmit copies a pool buffer into a free
chunk.  (Registering spp's pool itself as the UMEM would save the rx copy, but chunks
given to the kernel would be pool buffers held outside the pool's books; not done.)
On a veth the kernel runs AF_XDP in copy mode anyway.

Counters, as AF_PACKET: rx ``runt``/``too_long``/``nombuf`` per frame; frames the
kernel dropped because the rx or fill ring was full (``XDP_STATISTICS``) → ``ring_full``;
tx ``runt``/``too_long`` accepted and counted; no free chunk or tx slot → the burst
ends (the caller counts ``tx_full``).  The 802.1Q tag stays in the frame (XDP sees the
frame as sent), so nothing needs restoring; a checksum left partial by a local sender
cannot be seen (AF_XDP has no such flag).

The XDP program is removed when the socket closes (port close, SIGTERM through the
process's orderly stop).  A program a crashed spp left is recognised by the pid file
``/run/spp/af_xdp/IFINDEX-IFNAME.pid`` naming a dead process and removed with a
warning; any other program attached to the interface is refused (:class:`XdpError`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import mmap
import os
import struct
import time
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.burst_tail import TX_OK, TX_RUNT, rx_burst_tail, tx_burst_tail, tx_fits
from spp.runtime.atomics import load_acquire, store_release
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, HEADROOM, pool_alloc
from spp.runtime.libc import EAGAIN, ENETDOWN, ENODEV, ENXIO, send_kick
from spp.runtime.rawmem import copy_bytes, raw_array
from spp.runtime.stats import ERRORS, REASON, stat_add

log = logging.getLogger(__name__)
_NO_NRT: dict[str, Any] = {"_nrt": False}

FRAME: Final = 4096
#: Receive chunks: as many as the rx and fill rings hold, so a worker descheduled for
#: ~40 ms at 0.2 Mpps loses nothing (AF_PACKET's 4 MiB TPACKET_V3 ring holds more).
N_RX: Final = 8192
N_TX: Final = 2048
N_FRAMES: Final = N_RX + N_TX
UMEM_BYTES: Final = FRAME * N_FRAMES
RX_RING: Final = N_RX  # rx and fill ring sizes
TX_RING: Final = N_TX  # tx and completion ring sizes
SOL_XDP: Final = 283
XDP_STATISTICS: Final = 7
PIDDIR: Final = "/run/spp/af_xdp"
XDP_FLAGS_SKB_MODE: Final = 1 << 1

# The state array (int64) the compiled kernels work on: link facts where the AF_PACKET tx
# state has them (phy's TXS_KICK, TXS_MTU, TXS_UP, TXS_FD: the port's link code serves
# both drivers), the four rings' producer, consumer and descriptor addresses and masks,
# the UMEM and the transmit half's free-chunk stack.
(_XS_0, _XS_1, XS_KICK, XS_MTU, XS_UP, XS_FD,
 XS_FILL_PROD, XS_FILL_CONS, XS_FILL_RING, XS_FILL_MASK,
 XS_COMP_PROD, XS_COMP_CONS, XS_COMP_RING, XS_COMP_MASK,
 XS_RX_PROD, XS_RX_CONS, XS_RX_RING, XS_RX_MASK,
 XS_TX_PROD, XS_TX_CONS, XS_TX_RING, XS_TX_MASK,
 XS_UMEM, XS_FREE, XS_NFREE) = range(25)
XS_LEN: Final = 26
KICK_LINK: Final = 1
_RUNT: Final = REASON["runt"]
_TOO_LONG: Final = REASON["too_long"]
_NOMBUF: Final = REASON["nombuf"]
_M32: Final = 0xFFFFFFFF


class XdpError(OSError):
    """AF_XDP is not possible here; the message says why (the caller may fall back to AF_PACKET)."""


# --- compiled ring work -------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always", **_NO_NRT)
def _i64(x: Any) -> int:
    """A ring index or descriptor word as a signed 64-bit integer (no unsigned arithmetic)."""
    return np.int64(x)  # type: ignore[return-value]


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_rx(xs: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
           meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """Copy up to ``n`` received frames into fresh buffers ``out[:k]``, recycle their chunks; return ``k``."""
    rxp = raw_array(xs[XS_RX_PROD], 1, np.uint32)
    rxc = raw_array(xs[XS_RX_CONS], 1, np.uint32)
    cons = _i64(rxc[0])
    avail = (_i64(load_acquire(rxp, 0)) - cons) & _M32
    if avail == 0:
        return 0
    want = min(avail, n)
    rmask = xs[XS_RX_MASK]
    ring = raw_array(xs[XS_RX_RING], 2 * (rmask + 1), np.uint64)
    fmask = xs[XS_FILL_MASK]
    fill = raw_array(xs[XS_FILL_RING], fmask + 1, np.uint64)
    fp = raw_array(xs[XS_FILL_PROD], 1, np.uint32)
    fprod = _i64(fp[0])
    umem = raw_array(xs[XS_UMEM], UMEM_BYTES, np.uint8)
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, want)
    k = 0
    nbytes = 0
    runt = 0
    toolong = 0
    nomb = 0
    for i in range(want):
        d = ((cons + i) & rmask) * 2
        addr = _i64(ring[d])
        ln = _i64(ring[d + 1] & _M32)
        if ln < ETHER_MIN:
            runt += 1
        elif ln > DATA_ROOM:
            toolong += 1
        elif k >= got:
            nomb += 1
        else:
            bid = out[k]
            copy_bytes(data, bid * data.shape[1] + HEADROOM, umem, addr, ln)
            meta[bid, 0] = HEADROOM
            meta[bid, 1] = ln
            meta[bid, 2] = slot
            if ln >= 18 and data[bid, HEADROOM + 12] == 0x81 and data[bid, HEADROOM + 13] == 0:
                meta[bid, 3] = (np.int64(data[bid, HEADROOM + 14]) << 8 | data[bid, HEADROOM + 15]) & 0xFFFF
            nbytes += ln
            k += 1
        fill[(fprod + i) & fmask] = np.uint64(addr - addr % FRAME)  # the chunk goes straight back
    store_release(rxc, 0, (cons + want) & _M32)
    store_release(fp, 0, (fprod + want) & _M32)
    rx_burst_tail(pctrl, pslots, refcnt, header, out, got, k, stats[slot], nbytes, runt, _TOO_LONG, toolong,
                  _NOMBUF, nomb)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_reclaim(xs: np.ndarray) -> int:
    """Put the chunks the kernel finished sending (completion ring) back on the free stack; how many."""
    cp = raw_array(xs[XS_COMP_PROD], 1, np.uint32)
    cc = raw_array(xs[XS_COMP_CONS], 1, np.uint32)
    cons = _i64(cc[0])
    done = (_i64(load_acquire(cp, 0)) - cons) & _M32
    if done == 0:
        return 0
    cmask = xs[XS_COMP_MASK]
    comp = raw_array(xs[XS_COMP_RING], cmask + 1, np.uint64)
    free = raw_array(xs[XS_FREE], N_TX, np.int64)
    nf = xs[XS_NFREE]
    for i in range(done):
        free[nf] = _i64(comp[(cons + i) & cmask])
        nf += 1
    xs[XS_NFREE] = nf
    store_release(cc, 0, (cons + done) & _M32)
    return int(done)


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_tx(xs: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
           meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
           scratch: np.ndarray) -> int:
    """Copy ``ids[:n]`` into free chunks and tx descriptors, kick; the accepted prefix length, -1: not up."""
    if xs[XS_UP] == 0:
        return -1
    xdp_reclaim(xs)
    tp = raw_array(xs[XS_TX_PROD], 1, np.uint32)
    tc = raw_array(xs[XS_TX_CONS], 1, np.uint32)
    prod = _i64(tp[0])
    tmask = xs[XS_TX_MASK]
    room = tmask + 1 - ((prod - _i64(load_acquire(tc, 0))) & _M32)
    ring = raw_array(xs[XS_TX_RING], 2 * (tmask + 1), np.uint64)
    free = raw_array(xs[XS_FREE], N_TX, np.int64)
    umem = raw_array(xs[XS_UMEM], UMEM_BYTES, np.uint8)
    nf = xs[XS_NFREE]
    mtu = xs[XS_MTU]
    k = 0
    queued = 0
    nbytes = 0
    runt = 0
    toolong = 0
    while k < n:
        b = ids[k]
        fit = tx_fits(data, meta, b, mtu, FRAME - 256)
        if fit != TX_OK:
            if fit == TX_RUNT:
                runt += 1
            else:
                toolong += 1
            k += 1
            continue
        off = meta[b, 0]
        ln = meta[b, 1]
        if queued >= room or nf == 0:
            break
        nf -= 1
        addr = free[nf]
        copy_bytes(umem, addr, data, b * data.shape[1] + off, ln)
        d = ((prod + queued) & tmask) * 2
        ring[d] = np.uint64(addr)
        ring[d + 1] = np.uint64(ln)  # len; options 0
        queued += 1
        nbytes += ln
        k += 1
    xs[XS_NFREE] = nf
    if queued:
        store_release(tp, 0, (prod + queued) & _M32)
    # Copy mode sends at most 32 frames per kick: kick until the kernel took everything queued
    # (bounded: a kick that takes nothing ends it; what is left goes with the next burst).
    end = (prod + queued) & _M32
    tries = 0
    while (queued or k < n) and tries < N_TX // 32 + 2:
        before = _i64(load_acquire(tc, 0))
        if before == end and tries > 0:
            break
        r = send_kick(xs[XS_FD])
        tries += 1
        if r < 0 and r not in (-EAGAIN, -16, -105):  # EBUSY, ENOBUFS: the kernel is still at it
            if r in (-ENETDOWN, -ENXIO, -ENODEV):
                xs[XS_KICK] = KICK_LINK
            else:
                stat_add(stats[slot], ERRORS, 1)
            break
        after = _i64(load_acquire(tc, 0))
        if after in (end, before):
            break
    tx_burst_tail(pctrl, pslots, refcnt, header, ids, k, scratch, stats[slot], queued, nbytes, runt, _TOO_LONG,
                  toolong)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_rx_ready(xs: np.ndarray) -> bool:
    rxp = raw_array(xs[XS_RX_PROD], 1, np.uint32)
    rxc = raw_array(xs[XS_RX_CONS], 1, np.uint32)
    return bool(load_acquire(rxp, 0) != rxc[0])


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_rx_at(a: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """:func:`xdp_rx` on the state array at address ``a`` (the compiled worker's view)."""
    xs = raw_array(a, XS_LEN, np.int64)
    if not xdp_rx_ready(xs):
        return 0
    k: int = xdp_rx(xs, pctrl, pslots, refcnt, header, meta, data, stats, slot, out, n)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def xdp_tx_at(a: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
              scratch: np.ndarray) -> int:
    """:func:`xdp_tx` on the state array at address ``a``."""
    k: int = xdp_tx(raw_array(a, XS_LEN, np.int64), pctrl, pslots, refcnt, header, meta, data, stats, slot, ids, n,
                    scratch)
    return k


# --- libxdp through ctypes ----------------------------------------------------------------


class _Ring(ctypes.Structure):
    _fields_ = [("cached_prod", ctypes.c_uint32), ("cached_cons", ctypes.c_uint32), ("mask", ctypes.c_uint32),
                ("size", ctypes.c_uint32), ("producer", ctypes.c_void_p), ("consumer", ctypes.c_void_p),
                ("ring", ctypes.c_void_p), ("flags", ctypes.c_void_p)]


class _UmemConfig(ctypes.Structure):
    _fields_ = [("fill_size", ctypes.c_uint32), ("comp_size", ctypes.c_uint32), ("frame_size", ctypes.c_uint32),
                ("frame_headroom", ctypes.c_uint32), ("flags", ctypes.c_uint32)]


class _SocketConfig(ctypes.Structure):
    _fields_ = [("rx_size", ctypes.c_uint32), ("tx_size", ctypes.c_uint32), ("libxdp_flags", ctypes.c_uint32),
                ("xdp_flags", ctypes.c_uint32), ("bind_flags", ctypes.c_uint16)]


_lib: ctypes.CDLL | None = None


def libxdp() -> ctypes.CDLL:
    """The loaded libxdp (:class:`XdpError` if it is not installed)."""
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libxdp.so.1", use_errno=True)
        except OSError as e:
            raise XdpError(f"libxdp is not installed ({e}); Debian: apt-get install libxdp1 libbpf1") from None
        vp, c_int = ctypes.c_void_p, ctypes.c_int
        lib.xsk_umem__create.argtypes = [ctypes.POINTER(vp), vp, ctypes.c_uint64, ctypes.POINTER(_Ring),
                                         ctypes.POINTER(_Ring), ctypes.POINTER(_UmemConfig)]
        lib.xsk_umem__create.restype = c_int
        lib.xsk_socket__create.argtypes = [ctypes.POINTER(vp), ctypes.c_char_p, ctypes.c_uint32, vp,
                                           ctypes.POINTER(_Ring), ctypes.POINTER(_Ring),
                                           ctypes.POINTER(_SocketConfig)]
        lib.xsk_socket__create.restype = c_int
        lib.xsk_socket__fd.argtypes = [vp]
        lib.xsk_socket__fd.restype = c_int
        lib.xsk_socket__delete.argtypes = [vp]
        lib.xsk_socket__delete.restype = None
        lib.xsk_umem__delete.argtypes = [vp]
        lib.xsk_umem__delete.restype = c_int
        lib.xdp_multiprog__get_from_ifindex.argtypes = [c_int]
        lib.xdp_multiprog__get_from_ifindex.restype = vp
        lib.libxdp_get_error.argtypes = [vp]
        lib.libxdp_get_error.restype = ctypes.c_long
        lib.xdp_multiprog__detach.argtypes = [vp]
        lib.xdp_multiprog__detach.restype = c_int
        lib.xdp_multiprog__close.argtypes = [vp]
        lib.xdp_multiprog__close.restype = None
        lib.libxdp_set_print.argtypes = [vp]
        lib.libxdp_set_print.restype = vp
        lib.libxdp_set_print(None)  # spp reports the errors itself, in words a user can act on
        with contextlib.suppress(OSError, AttributeError):
            bpf = ctypes.CDLL("libbpf.so.1")
            bpf.libbpf_set_print.argtypes = [vp]
            bpf.libbpf_set_print.restype = vp
            bpf.libbpf_set_print(None)
        _lib = lib
    return _lib


_libc_handle: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """libc for ``getsockopt`` on an XDP socket (Python's socket module does not know the family)."""
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
    return _libc_handle


def _pidfile(ifindex: int, iface: str) -> str:
    return os.path.join(PIDDIR, f"{ifindex}-{iface}.pid")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_interface(iface: str, ifindex: int) -> None:
    """Make sure no foreign XDP program holds ``iface``: remove a stale one a dead spp left, refuse others."""
    lib = libxdp()
    mp = lib.xdp_multiprog__get_from_ifindex(ifindex)
    if not mp or lib.libxdp_get_error(mp):
        return  # nothing attached
    try:
        path = _pidfile(ifindex, iface)
        owner = 0
        with contextlib.suppress(OSError, ValueError), open(path) as f:
            owner = int(f.read().split()[0])
        if owner == os.getpid():
            return  # another queue of ours: libxdp shares the program
        if owner and not _alive(owner):
            r = lib.xdp_multiprog__detach(mp)
            if r < 0:
                raise XdpError(f"{iface}: cannot remove the stale XDP program spp process {owner} left: "
                               f"{os.strerror(-r)}")
            log.warning("%s: removed the stale XDP program that spp process %d (no longer running) left attached",
                        iface, owner)
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        who = f"spp process {owner}" if owner else "another program"
        raise XdpError(f"{iface} already has an XDP program attached (held by {who}); spp does not replace it: "
                       f"detach it (xdp-loader unload {iface} --all) or use the AF_PACKET driver "
                       f"(--phy-driver af_packet)")
    finally:
        lib.xdp_multiprog__close(mp)


class Xsk:
    """One AF_XDP socket (rx and tx rings) on ``iface`` queue ``queue`` with its own UMEM."""

    def __init__(self, iface: str, ifindex: int, queue: int, mtu: int) -> None:
        lib = libxdp()
        claim_interface(iface, ifindex)
        self.iface, self.ifindex = iface, ifindex
        self.umem_p = ctypes.c_void_p()
        self.xsk_p = ctypes.c_void_p()
        self.fill, self.comp, self.rx, self.tx = _Ring(), _Ring(), _Ring(), _Ring()
        self.area = mmap.mmap(-1, UMEM_BYTES, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self.u8: np.ndarray = np.frombuffer(self.area, np.uint8)
        addr = int(self.u8.__array_interface__["data"][0])
        self.free = np.arange(N_RX, N_FRAMES, dtype=np.int64) * FRAME
        self.state = np.zeros(XS_LEN, np.int64)
        self._pid_written = False
        try:
            self._write_pidfile()
            self.mode = "native"
            for _ in range(50):  # a socket closed just before releases the queue in deferred kernel work
                r = self._create(lib, iface, queue, addr, 0)
                if r != -errno.EBUSY:
                    break
                time.sleep(0.02)
            if r < 0 and -r in (errno.ERANGE, errno.EOPNOTSUPP, errno.EINVAL):
                # the driver's own XDP refused (a veth with a large MTU, no native XDP): the generic hook
                native_err = os.strerror(-r)
                self.mode = "skb"
                for _ in range(50):  # the failed socket releases the queue in deferred work too
                    r = self._create(lib, iface, queue, addr, XDP_FLAGS_SKB_MODE)
                    if r != -errno.EBUSY:
                        break
                    time.sleep(0.02)
                if r >= 0:
                    log.info("%s: AF_XDP in generic (skb) mode: native XDP refused (%s)", iface, native_err)
            if r < 0:
                raise XdpError(f"{iface}: the kernel refused an AF_XDP socket on queue {queue}: {os.strerror(-r)}")
            self.fd = int(lib.xsk_socket__fd(self.xsk_p))
            # every rx chunk into the fill ring
            fill = np.ctypeslib.as_array(ctypes.cast(self.fill.ring, ctypes.POINTER(ctypes.c_uint64)), (RX_RING,))
            fill[:N_RX] = np.arange(N_RX, dtype=np.uint64) * FRAME
            prod = np.ctypeslib.as_array(ctypes.cast(self.fill.producer, ctypes.POINTER(ctypes.c_uint32)), (1,))
            prod[0] = N_RX
        except BaseException:
            self.close()
            raise
        s = self.state
        for base, ring in ((XS_FILL_PROD, self.fill), (XS_COMP_PROD, self.comp), (XS_RX_PROD, self.rx),
                           (XS_TX_PROD, self.tx)):
            s[base], s[base + 1], s[base + 2], s[base + 3] = ring.producer, ring.consumer, ring.ring, ring.mask
        s[XS_UMEM] = addr
        s[XS_FD] = self.fd
        s[XS_MTU] = mtu
        s[XS_FREE] = self.free.__array_interface__["data"][0]
        s[XS_NFREE] = N_TX

    def _create(self, lib: ctypes.CDLL, iface: str, queue: int, addr: int, xdp_flags: int) -> int:
        """A fresh UMEM and the socket on it (a failed socket leaves its UMEM unusable: both go)."""
        ucfg = _UmemConfig(RX_RING, TX_RING, FRAME, 0, 0)
        r: int = lib.xsk_umem__create(ctypes.byref(self.umem_p), ctypes.c_void_p(addr), UMEM_BYTES,
                                      ctypes.byref(self.fill), ctypes.byref(self.comp), ctypes.byref(ucfg))
        if r < 0:
            hint = " (locked-memory limit: raise ulimit -l or run as root)" if -r in (1, 12) else ""
            raise XdpError(f"{iface}: the kernel refused the UMEM: {os.strerror(-r)}{hint}")
        scfg = _SocketConfig(RX_RING, TX_RING, 0, xdp_flags, 0)
        r = lib.xsk_socket__create(ctypes.byref(self.xsk_p), iface.encode(), queue, self.umem_p,
                                   ctypes.byref(self.rx), ctypes.byref(self.tx), ctypes.byref(scfg))
        if r < 0:
            self.xsk_p = ctypes.c_void_p()
            lib.xsk_umem__delete(self.umem_p)
            self.umem_p = ctypes.c_void_p()
        return r

    def _write_pidfile(self) -> None:
        with contextlib.suppress(OSError):
            os.makedirs(PIDDIR, exist_ok=True)
            with open(_pidfile(self.ifindex, self.iface), "w") as f:
                f.write(f"{os.getpid()}\n")
            self._pid_written = True

    def kernel_drops(self) -> int:
        """Frames the kernel dropped since the last call (rx ring full, no fill chunk, invalid)."""
        buf = ctypes.create_string_buffer(48)
        size = ctypes.c_uint32(48)
        if _libc().getsockopt(self.fd, SOL_XDP, XDP_STATISTICS, buf, ctypes.byref(size)) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        raw = buf.raw
        # rx_dropped counts every frame the socket lost (ring full and no fill chunk included)
        total = struct.unpack_from("Q", raw)[0]
        last = getattr(self, "_last_drops", 0)
        self._last_drops = total
        return int(total - last)

    def pending(self) -> int:
        """Frames waiting in the rx ring (lost when the socket closes)."""
        if not self.rx.producer:
            return 0
        p = ctypes.cast(self.rx.producer, ctypes.POINTER(ctypes.c_uint32))[0]
        c = ctypes.cast(self.rx.consumer, ctypes.POINTER(ctypes.c_uint32))[0]
        return int((p - c) & _M32)

    def close(self) -> None:
        lib = libxdp()
        if self.xsk_p:
            lib.xsk_socket__delete(self.xsk_p)  # detaches libxdp's program with the last socket
            self.xsk_p = ctypes.c_void_p()
        if self.umem_p:
            lib.xsk_umem__delete(self.umem_p)
            self.umem_p = ctypes.c_void_p()
        if self._pid_written:
            with contextlib.suppress(OSError):
                os.unlink(_pidfile(self.ifindex, self.iface))
            self._pid_written = False
        if hasattr(self, "u8"):
            del self.u8
            with contextlib.suppress(BufferError):
                self.area.close()
