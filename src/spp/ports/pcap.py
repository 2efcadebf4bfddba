"""``pcap:N`` — read frames from a pcap file and/or write transmitted frames to one.

Options (DPDK's pcap PMD calls them ``rx_pcap``/``tx_pcap``; both spellings work):

* ``rx=PATH`` — receive the records of a classic libpcap file (either byte order,
  microsecond or nanosecond magic; link type 1, Ethernet).  Timestamps are ignored: the
  file is replayed as fast as it is polled.  ``loop=True`` starts over at the end
  (benchmarks); ``follow=True`` waits for records appended later (``tail -f``; tests
  and live captures).  pcapng is refused with a hint to convert it.
* ``tx=PATH`` — write every transmitted frame as a record (microsecond magic, link type
  1, snaplen 65535), created/truncated at open.  Each burst is one ``writev`` system
  call (up to ``TX_CHUNK`` = 512 frames; a larger burst takes one per 512), so the file
  is complete on disk after every burst (``tcpdump -r`` and Wireshark read it while it
  grows); close flushes nothing more because nothing is buffered.

Without either option the port looks at the stack's config ``{"pcap": {"N": {"rx": ...,
"tx": ...}}}``, and otherwise becomes a capture sink writing ``/tmp/spp-pcap-N.pcap``
(the common use of a file port: record what a mirror sends).

Accounting: a record whose captured length exceeds both the file's snaplen and 65535 (or
256 KiB in any case) → ``bad_frame``, and the rest of the file is skipped (no way to
resynchronise); a file that ends inside a record (without ``follow``) → one
``bad_frame``; records < 14 bytes → ``runt``; longer than ``DATA_ROOM`` → ``too_long``.
A file source never loses a frame to an empty pool: it simply resumes when buffers are
free.  Transmit on a port without ``tx`` accepts, frees and counts ``no_tx_port``; a
failed write (disk full) refuses the burst (the caller counts ``tx_full``) and counts
an error; the file is cut back to its last complete burst.  A followed file whose
header, once written, is not a classic Ethernet pcap header counts one ``bad_frame``
and an error, and the port stops reading; a failed ``read`` counts an error (tried
again on the next poll).

One implementation serves both paths: the compiled kernels :func:`pcap_rx_at` and
:func:`pcap_tx_at` do the file I/O themselves (``read``/``lseek``/``writev`` through
:mod:`spp.runtime.libc`) on the port's row (:meth:`PcapPort.native_view`: the addresses
of its state words, read buffer, record headers and iovec, ``PC_*`` columns), the way the
compiled worker loop calls them; the Python port's ``rx_burst``/``tx_burst`` call the same
kernels on the same row.  Frames are written straight from the pool buffers (no copy);
a partial write continues where it stopped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import threading
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.base import Port, PortError, PortId, register_driver
from spp.ports.burst_tail import rx_burst_tail, tx_burst_tail
from spp.ports.native import KIND_PCAP
from spp.runtime import libc, quiesce
from spp.runtime.atomics import atomic_cas, store_release
from spp.runtime.dataplane import BUF_SIZE, DATA_ROOM, ETHER_MIN, HEADROOM, Dataplane, pool_alloc
from spp.runtime.rawmem import copy_bytes, raw_array
from spp.runtime.stats import ERRORS, REASON, stat_add

log = logging.getLogger(__name__)

MAGIC_USEC: Final = 0xA1B2C3D4
MAGIC_NSEC: Final = 0xA1B23C4D
PCAPNG_MAGIC: Final = 0x0A0D0D0A
LINKTYPE_ETHERNET: Final = 1
GLOBAL_HDR: Final = 24
REC_HDR: Final = 16
MAX_RECORD: Final = 256 * 1024
READ_CHUNK: Final = 1 << 20
#: The read buffer: a chunk plus the unread tail of the previous one (at most one record).
RBUF_LEN: Final = READ_CHUNK + MAX_RECORD + REC_HDR
#: Frames per ``writev`` (two iovec entries each; ``IOV_MAX`` is 1024).
TX_CHUNK: Final = 512

_TOO_LONG: Final = REASON["too_long"]
_BAD: Final = REASON["bad_frame"]
_NO_TX: Final = REASON["no_tx_port"]
_NO_NRT: dict[str, Any] = {"_nrt": False}

# Parser results (``st[S_PSTAT]``).
P_MORE: Final = 0  # need more bytes (or the burst is full)
P_BAD: Final = 1  # a record with an impossible length: stop reading this file
P_NOMBUF: Final = 2  # the pool had no free buffer: resume when there is one

#: The port's state words (``PcapPort._st``, int64), read and written by the kernels.  The
#: first three are :func:`pcap_rx`'s parser state: read position and end in the read
#: buffer, parser result.  Then the read and write descriptors (-1: none, or closed),
#: loop and follow flags, the file's byte order (1: swapped) and largest acceptable
#: record, whether its header was read, whether reading ended, whether the port is
#: closed, the size of the written file, the errno of the last failed write, a detail of
#: the last header (its link type, or the errno of a failed read), a ``timespec`` (two
#: words), and the receive and transmit locks (1: a worker is in a burst; several workers
#: may transmit to one port, e.g. the port mirrors of several workers to one capture file).
(S_POS, S_END, S_PSTAT, S_RFD, S_WFD, S_LOOP, S_FOLLOW, S_SWAP, S_MAXCAP, S_HDR, S_DONE, S_CLOSED, S_WOFF,
 S_TXERR, S_AUX, S_TS) = range(16)
S_RLOCK, S_WLOCK = S_TS + 2, S_TS + 3
S_LEN: Final = 20
#: Columns of a pcap port's row for the compiled worker loop (:meth:`PcapPort.native_view`):
#: addresses of the state words, the read buffer (``RBUF_LEN`` bytes), the record headers
#: (``TX_CHUNK * REC_HDR`` bytes) and the iovec (``2 * TX_CHUNK`` pairs of int64).
PC_ST, PC_RBUF, PC_HDRS, PC_IOV = range(4)
PC_COLS: Final = 4

# :func:`pcap_header` results.
HDR_WAIT: Final = 0  # shorter than the global header (so far)
HDR_OK: Final = 1
HDR_PCAPNG: Final = -1
HDR_MAGIC: Final = -2
HDR_LINKTYPE: Final = -3
HDR_IOERR: Final = -4

_read = libc.read
_writev = libc.writev
_lseek = libc.lseek
_ftruncate = libc.ftruncate
_clock_gettime = libc.clock_gettime
_errno_location = libc.errno_location


@njit(cache=True, nogil=True, **_NO_NRT)
def _u32(buf: np.ndarray, pos: int, swap: bool) -> int:
    if swap:
        return (int(buf[pos]) << 24) | (int(buf[pos + 1]) << 16) | (int(buf[pos + 2]) << 8) | int(buf[pos + 3])
    return (int(buf[pos + 3]) << 24) | (int(buf[pos + 2]) << 16) | (int(buf[pos + 1]) << 8) | int(buf[pos])


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_header(fd: int, buf: np.ndarray, st: np.ndarray) -> int:
    """Read and check the global header of the file open as ``fd`` into ``buf[:24]``; ``HDR_*``.

    On ``HDR_OK`` the byte order and the largest acceptable record are in ``st``, the
    parser state is reset and ``fd`` stands at the first record.  ``st[S_AUX]``: the link
    type (``HDR_LINKTYPE``) or the errno (``HDR_IOERR``).
    """
    if _lseek(fd, 0, libc.SEEK_SET) < 0:
        st[S_AUX] = _errno_location()[0]
        return HDR_IOERR
    got = 0
    while got < GLOBAL_HDR:
        r = _read(fd, buf.ctypes.data + got, GLOBAL_HDR - got)
        if r < 0:
            e = _errno_location()[0]
            if e == libc.EINTR:
                continue
            st[S_AUX] = e
            return HDR_IOERR
        if r == 0:
            return HDR_WAIT
        got += r
    magic = _u32(buf, 0, False)
    if magic in (MAGIC_USEC, MAGIC_NSEC):
        swap = False
    elif _u32(buf, 0, True) in (MAGIC_USEC, MAGIC_NSEC):
        swap = True
    elif magic == PCAPNG_MAGIC:
        return HDR_PCAPNG
    else:
        return HDR_MAGIC
    linktype = _u32(buf, 20, swap) & 0xFFFF
    st[S_AUX] = linktype
    if linktype != LINKTYPE_ETHERNET:
        return HDR_LINKTYPE
    st[S_SWAP] = 1 if swap else 0
    st[S_MAXCAP] = min(MAX_RECORD, max(_u32(buf, 16, swap), 65535))
    st[S_POS] = 0
    st[S_END] = 0
    st[S_PSTAT] = P_MORE
    st[S_HDR] = 1
    return HDR_OK


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_rx(buf: np.ndarray, st: np.ndarray, swap: bool, maxcap: int, pctrl: np.ndarray, pslots: np.ndarray,
            refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray,
            slot: int, out: np.ndarray, n: int) -> int:
    """Parse records from ``buf[st[0]:st[1]]`` into fresh buffers ``out[:k]``; return ``k``.

    Advances ``st[0]`` past consumed records; ``st[2]`` = ``P_MORE``, ``P_BAD`` or
    ``P_NOMBUF`` (no buffer could be allocated).
    """
    pos = st[0]
    end = st[1]
    st[2] = P_MORE
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, n)
    if got == 0 and n > 0:
        st[2] = P_NOMBUF
    k = 0
    nbytes = 0
    runt = 0
    toolong = 0
    bad = 0
    while k < got:
        if end - pos < REC_HDR:
            break
        incl = _u32(buf, pos + 8, swap)
        if incl > maxcap:
            bad += 1
            st[2] = P_BAD
            break
        if end - pos < REC_HDR + incl:
            break
        src = pos + REC_HDR
        pos += REC_HDR + incl
        if incl < ETHER_MIN:
            runt += 1
            continue
        if incl > DATA_ROOM:
            toolong += 1
            continue
        b = out[k]
        copy_bytes(data, b * BUF_SIZE + HEADROOM, buf, src, incl)
        meta[b, 0] = HEADROOM
        meta[b, 1] = incl
        meta[b, 2] = slot
        nbytes += incl
        k += 1
    st[0] = pos
    rx_burst_tail(pctrl, pslots, refcnt, header, out, got, k, stats[slot], nbytes, runt, _TOO_LONG, toolong,
                  _BAD, bad)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def _refill(fd: int, buf: np.ndarray, st: np.ndarray) -> int:
    """Move the unread bytes to the front of ``buf`` and read more: the bytes added (0: end of
    file), or ``-errno``."""
    lo = st[S_POS]
    hi = st[S_END]
    if lo:
        for i in range(hi - lo):  # forward over an overlap (the tail is at most one record)
            buf[i] = buf[lo + i]
        hi -= lo
        st[S_POS] = 0
        st[S_END] = hi
    room = buf.shape[0] - hi
    if room <= 0:
        return 0
    while True:
        r = _read(fd, buf.ctypes.data + hi, room)
        if r >= 0:
            break
        e: int = _errno_location()[0]
        if e != libc.EINTR:
            return -e
    st[S_END] = hi + r
    return r


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_read(fd: int, buf: np.ndarray, st: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
              refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray,
              slot: int, out: np.ndarray, n: int) -> int:
    """Receive up to ``n`` records of the file open as ``fd`` into fresh buffers ``out[:k]``; ``k``.

    Reads the header first if it has not been read (a followed file may start empty),
    refills ``buf`` as records are consumed and applies the end-of-file policy: ``follow``
    waits, ``loop`` starts over (again only if the last pass gave frames), otherwise the
    port is done; a file that ends inside a record counts one ``bad_frame``.
    """
    row = stats[slot]
    if st[S_HDR] == 0:
        h = pcap_header(fd, buf, st)
        if h == HDR_WAIT:
            return 0
        if h != HDR_OK:
            st[S_DONE] = 1
            stat_add(row, _BAD, 1)
            stat_add(row, ERRORS, 1)
            return 0
    k = 0
    k_at_rewind = -1
    while k < n:
        k += pcap_rx(buf, st, st[S_SWAP] != 0, st[S_MAXCAP], pctrl, pslots, refcnt, header, meta, data, stats,
                     slot, out[k:], n - k)
        if st[S_PSTAT] == P_BAD:  # cannot resynchronise
            st[S_DONE] = 1
            break
        if k >= n or st[S_PSTAT] == P_NOMBUF:  # pool empty: resume later, nothing lost
            break
        r = _refill(fd, buf, st)
        if r > 0:
            continue
        if r < 0:
            stat_add(row, ERRORS, 1)
            break
        # End of file.
        if st[S_FOLLOW]:
            break
        if st[S_END] > st[S_POS]:
            stat_add(row, _BAD, 1)  # the file ends inside a record
            st[S_POS] = st[S_END]
        if st[S_LOOP] and k > k_at_rewind:
            _lseek(fd, GLOBAL_HDR, libc.SEEK_SET)
            st[S_POS] = 0
            st[S_END] = 0
            k_at_rewind = k
            continue
        if not st[S_LOOP]:
            st[S_DONE] = 1
        break
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def _put32(buf: np.ndarray, pos: int, v: int) -> None:
    buf[pos] = v & 0xFF
    buf[pos + 1] = (v >> 8) & 0xFF
    buf[pos + 2] = (v >> 16) & 0xFF
    buf[pos + 3] = (v >> 24) & 0xFF


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_records(hdrs: np.ndarray, iov: np.ndarray, meta: np.ndarray, data: np.ndarray, ids: np.ndarray,
                 start: int, n: int, sec: int, usec: int) -> int:
    """Describe ``ids[start:start+n]`` as pcap records (little-endian) for one ``writev``.

    Record ``i``'s header goes to ``hdrs[16*i:16*i+16]``; ``iov[4*i:4*i+4]`` = (header
    address, 16, frame address in the pool, frame length).  Returns the byte count.
    """
    hbase = np.int64(hdrs.ctypes.data)
    dbase = np.int64(data.ctypes.data)
    total = 0
    for i in range(n):
        b = ids[start + i]
        off = meta[b, 0]
        ln = meta[b, 1]
        h = REC_HDR * i
        _put32(hdrs, h, sec)
        _put32(hdrs, h + 4, usec)
        _put32(hdrs, h + 8, ln)
        _put32(hdrs, h + 12, max(ln, meta[b, 5]))  # original length (M_ORIGLEN of a snaplen copy)
        iov[4 * i] = hbase + h
        iov[4 * i + 1] = REC_HDR
        iov[4 * i + 2] = dbase + b * BUF_SIZE + off
        iov[4 * i + 3] = ln
        total += REC_HDR + ln
    return total


@njit(cache=True, nogil=True, **_NO_NRT)
def iov_advance(iov: np.ndarray, i: int, cnt: int, r: int) -> int:
    """Step over the first ``r`` bytes of the (address, length) pairs ``iov[2*i:2*cnt]`` (a
    partial write): the index of the first pair with bytes left, itself shortened in place."""
    while i < cnt and r >= iov[2 * i + 1]:
        r -= iov[2 * i + 1]
        i += 1
    if r:
        iov[2 * i] += r
        iov[2 * i + 1] -= r
    return i


@njit(cache=True, nogil=True, **_NO_NRT)
def _writev_all(fd: int, iov: np.ndarray, cnt: int) -> int:
    """Write the ``cnt`` (address, length) pairs of ``iov`` completely: 0, or ``-errno``.

    A partial write (a signal, the disk filling up) continues where it stopped.
    """
    base = np.int64(iov.ctypes.data)
    i = 0
    while True:
        while i < cnt and iov[2 * i + 1] == 0:
            i += 1
        if i >= cnt:
            return 0
        r = _writev(fd, base + 16 * i, cnt - i)
        if r < 0:
            e: int = _errno_location()[0]
            if e == libc.EINTR:
                continue
            return -e
        if r == 0:
            return -libc.EIO
        i = iov_advance(iov, i, cnt, r)


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_write(fd: int, st: np.ndarray, hdrs: np.ndarray, iov: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
               refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray,
               slot: int, ids: np.ndarray, n: int, scratch: np.ndarray) -> int:
    """Append ``ids[:n]`` to the capture file open as ``fd``: ``n`` (all freed), or 0 if the write
    failed (nothing taken, an error counted, the file cut back to its last complete burst)."""
    _clock_gettime(libc.CLOCK_REALTIME, st.ctypes.data + 8 * S_TS)
    sec = st[S_TS]
    usec = st[S_TS + 1] // 1000
    off = st[S_WOFF]
    size = 0
    i = 0
    while i < n:
        m = min(n - i, TX_CHUNK)
        c = pcap_records(hdrs, iov, meta, data, ids, i, m, sec, usec)
        r = _writev_all(fd, iov, 2 * m)
        if r < 0:
            st[S_TXERR] = -r
            stat_add(stats[slot], ERRORS, 1)
            _ftruncate(fd, off)  # keep the file parseable
            _lseek(fd, off, libc.SEEK_SET)
            return 0
        size += c
        i += m
    st[S_WOFF] = off + size
    tx_burst_tail(pctrl, pslots, refcnt, header, ids, n, scratch, stats[slot], n, size - n * REC_HDR, 0, _BAD, 0)
    return n


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_rx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
               meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """A pcap port's receive (``row``: ``PC_*`` columns, arrays by address): fresh buffers ``out[:k]``.

    0 when the port has no ``rx`` file, reached its end or is closed, or while another
    worker is receiving from it.  The Python port and the compiled worker loop both
    receive through here.
    """
    st = raw_array(row[PC_ST], S_LEN, np.int64)
    fd = st[S_RFD]
    if fd < 0 or st[S_DONE] or n <= 0 or atomic_cas(st, S_RLOCK, 0, 1) != 0:
        return 0
    k: int = pcap_read(fd, raw_array(row[PC_RBUF], RBUF_LEN, np.uint8), st, pctrl, pslots, refcnt, header, meta,
                       data, stats, slot, out, n)
    store_release(st, S_RLOCK, 0)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def pcap_tx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
               meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
               scratch: np.ndarray) -> int:
    """A pcap port's transmit (``scratch``: ``len >= n``): the accepted prefix length.

    -1: the port is closed (nothing taken; the caller counts ``link_down``).  Without a
    ``tx`` file the burst is taken, freed and counted ``no_tx_port``; a failed write takes
    nothing (the caller counts ``tx_full``) and counts an error.  Workers transmitting to
    the same port take turns (a burst's write is short).  The Python port and the compiled
    worker loop both transmit through here.
    """
    st = raw_array(row[PC_ST], S_LEN, np.int64)
    if st[S_CLOSED]:
        return -1
    if n <= 0:
        return 0
    fd = st[S_WFD]
    if fd < 0:
        tx_burst_tail(pctrl, pslots, refcnt, header, ids, n, scratch, stats[slot], 0, 0, 0, _NO_TX, n)
        return n
    while atomic_cas(st, S_WLOCK, 0, 1) != 0:
        pass
    k: int = pcap_write(fd, st, raw_array(row[PC_HDRS], TX_CHUNK * REC_HDR, np.uint8),
                        raw_array(row[PC_IOV], 4 * TX_CHUNK, np.int64), pctrl, pslots, refcnt, header, meta, data,
                        stats, slot, ids, n, scratch)
    store_release(st, S_WLOCK, 0)
    return k


def _open_rx(pid: PortId, path: str, st: np.ndarray, buf: np.ndarray, follow: bool) -> int:
    """Open ``path`` for reading and check its header (a followed file may still be empty): the fd."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise PortError(f"{pid}: cannot read pcap file {path!r}: {e.strerror}") from None
    h = int(pcap_header(fd, buf, st))
    if h == HDR_OK or (h == HDR_WAIT and follow):
        return fd
    os.close(fd)
    if h == HDR_WAIT:
        raise PortError(f"{pid}: {path!r} is not a pcap file (shorter than the 24-byte header)")
    if h == HDR_PCAPNG:
        raise PortError(f"{pid}: {path!r} is pcapng; convert it to classic pcap "
                        f"(editcap -F pcap IN OUT or tcpdump -r IN -w OUT)")
    if h == HDR_MAGIC:
        raise PortError(f"{pid}: {path!r} is not a pcap file (magic {bytes(buf[:4]).hex()}; "
                        f"expected a1b2c3d4 or a1b23c4d in either byte order)")
    if h == HDR_LINKTYPE:
        raise PortError(f"{pid}: {path!r} has link type {int(st[S_AUX])}; only 1 (Ethernet) can be received")
    raise PortError(f"{pid}: cannot read pcap file {path!r}: {os.strerror(int(st[S_AUX]))}")


def _open_tx(pid: PortId, path: str) -> int:
    """Create (or truncate) ``path`` privately and write the global header: the fd."""
    try:
        # 0600 like the shared memory (frames are private); never through a symlink (/tmp)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as e:
        why = "it is a symbolic link (refused)" if e.errno == errno.ELOOP else e.strerror
        raise PortError(f"{pid}: cannot write pcap file {path!r}: {why}") from None
    with contextlib.suppress(OSError):  # an existing file keeps its data private too
        os.fchmod(fd, 0o600)
    try:
        os.write(fd, struct.pack("<IHHiIII", MAGIC_USEC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
    except OSError as e:
        os.close(fd)
        raise PortError(f"{pid}: cannot write pcap file {path!r}: {e.strerror}") from None
    return fd


class PcapPort(Port):
    """A pcap file port; see the module docstring."""

    ptype = "pcap"
    #: The compiled worker loop calls :func:`pcap_rx_at` / :func:`pcap_tx_at` on its row.
    native_kind = KIND_PCAP

    def __init__(self, dp: Dataplane, pid: PortId, rx: str | None = None, tx: str | None = None,
                 loop: bool = False, follow: bool = False) -> None:
        super().__init__(dp, pid)
        if rx is None and tx is None:
            conf = dp.config().get("pcap", {})
            entry = conf.get(str(pid.index), {}) if isinstance(conf, dict) else {}
            rx, tx = entry.get("rx"), entry.get("tx")
            if rx is None and tx is None:
                tx = f"/tmp/spp-pcap-{pid.index}.pcap"
        if loop and follow:
            raise PortError(f"{pid}: loop=True and follow=True contradict each other; pick one")
        self.rx_path, self.tx_path = rx, tx
        # Everything the kernels reach by address lives as long as the port.
        self._st = np.zeros(S_LEN, np.int64)
        self._st[S_RFD] = self._st[S_WFD] = -1
        self._st[S_LOOP], self._st[S_FOLLOW] = int(loop), int(follow)
        self._rbuf = np.zeros(RBUF_LEN if rx is not None else GLOBAL_HDR, np.uint8)
        self._hdrs = np.zeros(TX_CHUNK * REC_HDR, np.uint8)
        self._iov = np.zeros(4 * TX_CHUNK, np.int64)
        self._scratch = np.empty(256, np.int32)
        if rx is not None:
            self._st[S_RFD] = _open_rx(pid, rx, self._st, self._rbuf, follow)
        if tx is not None:
            try:
                self._st[S_WFD] = _open_tx(pid, tx)
            except PortError:
                if rx is not None:
                    os.close(int(self._st[S_RFD]))
                raise
            self._st[S_WOFF] = GLOBAL_HDR
        self._row = np.zeros(PC_COLS, np.int64)
        for col, arr in ((PC_ST, self._st), (PC_RBUF, self._rbuf), (PC_HDRS, self._hdrs), (PC_IOV, self._iov)):
            self._row[col] = arr.__array_interface__["data"][0]
        self._rx_lock = threading.Lock()
        self._tx_lock = threading.Lock()

    def native_view(self) -> np.ndarray:
        """The port's row for a compiled worker (``PC_*`` columns): arrays the port keeps for its life."""
        return self._row.copy()

    # -- receive --------------------------------------------------------------

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        if n <= 0:
            return 0
        dp = self.dp
        with self._rx_lock:
            return int(pcap_rx_at(self._row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                                  dp.stats, self.slot, bufs, n))

    @property
    def rx_done(self) -> bool:
        """True once a non-looping, non-following reader reached the end of its file."""
        return self.rx_path is not None and bool(self._st[S_DONE])

    # -- transmit -------------------------------------------------------------

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        dp = self.dp
        with self._tx_lock:
            if len(self._scratch) < n:
                self._scratch = np.empty(max(n, 2 * len(self._scratch)), np.int32)
            k = int(pcap_tx_at(self._row, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                               dp.stats, self.slot, bufs, n, self._scratch))
        if k < 0:
            self.count_drop("link_down", n)
            dp.free(bufs[:n].copy(), n)
            return n
        return k

    def close(self) -> None:
        with self._rx_lock, self._tx_lock:
            if self.closed:
                return
            self.closed = True
            st = self._st
            st[S_CLOSED] = 1
            fds = [int(st[S_RFD]), int(st[S_WFD])]
            st[S_RFD] = st[S_WFD] = -1
        # A compiled worker may be in a burst on a descriptor: close them only after a grace
        # period, or a new file could get the number and receive our frames.
        self._callbacks_changed()
        if not quiesce.synchronize():
            log.warning("%s: a worker did not pass a quiescent point in time; closing the files anyway", self.id)
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def describe(self) -> dict[str, Any]:
        return {
            "port": str(self.id),
            "driver": "pcap",
            "rx": self.rx_path,
            "tx": self.tx_path,
            "rx_done": self.rx_done,
            "link": "gone" if self.closed else "up",
        }


@register_driver("pcap")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    opts = dict(opts)
    for alias, name in (("rx_pcap", "rx"), ("tx_pcap", "tx")):
        if alias in opts:
            if name in opts:
                raise PortError(f"{pid}: give {name}= or {alias}=, not both")
            opts[name] = opts.pop(alias)
    return PcapPort(dp, pid, **opts)
