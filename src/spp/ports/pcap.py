"""``pcap:N`` — read frames from a pcap file and/or write transmitted frames to one.

Options (DPDK's pcap PMD calls them ``rx_pcap``/``tx_pcap``; both spellings work):

* ``rx=PATH`` — receive the records of a classic libpcap file (either byte order,
  microsecond or nanosecond magic; link type 1, Ethernet).  Timestamps are ignored: the
  file is replayed as fast as it is polled.  ``loop=True`` starts over at the end
  (benchmarks); ``follow=True`` waits for records appended later (``tail -f``; tests
  and live captures).  pcapng is refused with a hint to convert it.
* ``tx=PATH`` — write every transmitted frame as a record (microsecond magic, link type
  1, snaplen 65535), created/truncated at open.  Each burst is one ``write`` system
  call, so the file is complete on disk after every burst (``tcpdump -r`` and Wireshark
  read it while it grows); close flushes nothing more because nothing is buffered.

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
an error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import threading
import time
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.base import Port, PortError, PortId, register_driver
from spp.ports.burst_tail import rx_burst_tail
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, HEADROOM, Dataplane, pool_alloc
from spp.runtime.stats import REASON, TX_BYTES, TX_PACKETS, stat_add

MAGIC_USEC: Final = 0xA1B2C3D4
MAGIC_NSEC: Final = 0xA1B23C4D
PCAPNG_MAGIC: Final = 0x0A0D0D0A
LINKTYPE_ETHERNET: Final = 1
GLOBAL_HDR: Final = 24
REC_HDR: Final = 16
MAX_RECORD: Final = 256 * 1024
READ_CHUNK: Final = 1 << 20

_RUNT: Final = REASON["runt"]
_TOO_LONG: Final = REASON["too_long"]
_BAD: Final = REASON["bad_frame"]

# Parser results.
P_MORE: Final = 0  # need more bytes (or the burst is full)
P_BAD: Final = 1  # a record with an impossible length: stop reading this file


@njit(cache=True, nogil=True)
def _u32(buf: np.ndarray, pos: int, swap: bool) -> int:
    if swap:
        return (int(buf[pos]) << 24) | (int(buf[pos + 1]) << 16) | (int(buf[pos + 2]) << 8) | int(buf[pos + 3])
    return (int(buf[pos + 3]) << 24) | (int(buf[pos + 2]) << 16) | (int(buf[pos + 1]) << 8) | int(buf[pos])


@njit(cache=True, nogil=True)
def pcap_rx(buf: np.ndarray, st: np.ndarray, swap: bool, maxcap: int, pctrl: np.ndarray, pslots: np.ndarray,
            refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray,
            slot: int, out: np.ndarray, n: int) -> int:
    """Parse records from ``buf[st[0]:st[1]]`` into fresh buffers ``out[:k]``; return ``k``.

    Advances ``st[0]`` past consumed records; ``st[2]`` = ``P_MORE`` or ``P_BAD``.
    """
    pos = st[0]
    end = st[1]
    st[2] = P_MORE
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, n)
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
        data[b, HEADROOM:HEADROOM + incl] = buf[src:src + incl]
        meta[b, 0] = HEADROOM
        meta[b, 1] = incl
        meta[b, 2] = slot
        nbytes += incl
        k += 1
    st[0] = pos
    rx_burst_tail(pctrl, pslots, refcnt, header, out, got, k, stats[slot], nbytes, runt, _TOO_LONG, toolong,
                  _BAD, bad)
    return k


@njit(cache=True, nogil=True)
def _put32(buf: np.ndarray, pos: int, v: int) -> None:
    buf[pos] = v & 0xFF
    buf[pos + 1] = (v >> 8) & 0xFF
    buf[pos + 2] = (v >> 16) & 0xFF
    buf[pos + 3] = (v >> 24) & 0xFF


@njit(cache=True, nogil=True)
def pcap_records(outbuf: np.ndarray, meta: np.ndarray, data: np.ndarray, ids: np.ndarray, n: int,
                 sec: int, usec: int) -> int:
    """Write ``ids[:n]`` as pcap records (little-endian) into ``outbuf``; return the byte count."""
    pos = 0
    for i in range(n):
        b = ids[i]
        off = meta[b, 0]
        ln = meta[b, 1]
        _put32(outbuf, pos, sec)
        _put32(outbuf, pos + 4, usec)
        _put32(outbuf, pos + 8, ln)
        _put32(outbuf, pos + 12, max(ln, meta[b, 5]))  # original length (M_ORIGLEN of a snaplen copy)
        outbuf[pos + REC_HDR:pos + REC_HDR + ln] = data[b, off:off + ln]
        pos += REC_HDR + ln
    return pos


class _Reader:
    """Incremental reader of one pcap file (records are parsed by :func:`pcap_rx`)."""

    def __init__(self, pid: PortId, path: str, loop: bool, follow: bool) -> None:
        self.path = path
        self.loop = loop
        self.follow = follow
        try:
            self.f = open(path, "rb", buffering=0)  # noqa: SIM115 (lives as long as the port)
        except OSError as e:
            raise PortError(f"{pid}: cannot read pcap file {path!r}: {e.strerror}") from None
        self.buf = np.zeros(READ_CHUNK + MAX_RECORD + REC_HDR, np.uint8)
        self.st = np.zeros(3, np.int64)
        self.swap = False
        self.maxcap = MAX_RECORD
        self.header_ok = False
        self.done = False
        self.eof_seen = False
        self.pid = pid
        try:
            self._read_header(strict=not follow)
        except BaseException:
            self.f.close()
            raise

    def _read_header(self, strict: bool) -> None:
        self.f.seek(0)
        raw = self.f.read(GLOBAL_HDR)
        if raw is None or len(raw) < GLOBAL_HDR:
            if strict:
                raise PortError(f"{self.pid}: {self.path!r} is not a pcap file (shorter than the 24-byte header)")
            return
        magic_le = struct.unpack("<I", raw[:4])[0]
        if magic_le in (MAGIC_USEC, MAGIC_NSEC):
            self.swap = False
        elif struct.unpack(">I", raw[:4])[0] in (MAGIC_USEC, MAGIC_NSEC):
            self.swap = True
        elif magic_le == PCAPNG_MAGIC:
            raise PortError(f"{self.pid}: {self.path!r} is pcapng; convert it to classic pcap "
                            f"(editcap -F pcap IN OUT or tcpdump -r IN -w OUT)")
        else:
            raise PortError(f"{self.pid}: {self.path!r} is not a pcap file (magic {raw[:4].hex()}; "
                            f"expected a1b2c3d4 or a1b23c4d in either byte order)")
        endian = ">" if self.swap else "<"
        _vmaj, _vmin, _zone, _sig, snaplen, linktype = struct.unpack(endian + "HHiIII", raw[4:])
        if linktype & 0xFFFF != LINKTYPE_ETHERNET:
            raise PortError(f"{self.pid}: {self.path!r} has link type {linktype & 0xFFFF}; only 1 (Ethernet) "
                            f"can be received")
        self.maxcap = min(MAX_RECORD, max(snaplen, 65535))
        self.header_ok = True
        self.st[:] = 0

    def refill(self) -> int:
        """Move unread bytes to the front and read more; return how many bytes were added."""
        lo, hi = int(self.st[0]), int(self.st[1])
        if lo:
            self.buf[: hi - lo] = self.buf[lo:hi]
            self.st[0], self.st[1] = 0, hi - lo
            hi -= lo
        room = len(self.buf) - hi
        if room <= 0:
            return 0
        got = self.f.readinto(memoryview(self.buf)[hi:])  # type: ignore[arg-type]
        got = got or 0
        self.st[1] = hi + got
        return got

    def rewind(self) -> None:
        self.f.seek(GLOBAL_HDR)
        self.st[:] = 0

    def close(self) -> None:
        self.f.close()


class PcapPort(Port):
    """A pcap file port; see the module docstring."""

    ptype = "pcap"

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
        self._reader = _Reader(pid, rx, loop, follow) if rx is not None else None
        self._wfd: int | None = None
        if tx is not None:
            try:
                # 0600 like the shared memory (frames are private); never through a symlink (/tmp)
                self._wfd = os.open(tx, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as e:
                if self._reader is not None:
                    self._reader.close()
                why = "it is a symbolic link (refused)" if e.errno == errno.ELOOP else e.strerror
                raise PortError(f"{pid}: cannot write pcap file {tx!r}: {why}") from None
            with contextlib.suppress(OSError):  # an existing file keeps its data private too
                os.fchmod(self._wfd, 0o600)
            os.write(self._wfd, struct.pack("<IHHiIII", MAGIC_USEC, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        self._outbuf = np.zeros(64 * (REC_HDR + DATA_ROOM), np.uint8)
        self._scratch = np.empty(256, np.int32)
        self._rx_lock = threading.Lock()
        self._tx_lock = threading.Lock()

    # -- receive --------------------------------------------------------------

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        r = self._reader
        if r is None or r.done or n <= 0:
            return 0
        with self._rx_lock:
            if self.closed:
                return 0
            if not r.header_ok:
                r._read_header(strict=False)
                if not r.header_ok:
                    return 0
            dp = self.dp
            k = 0
            k_at_rewind = -1  # rewind again only if the last pass over the file gave frames
            while k < n:
                got = int(pcap_rx(r.buf, r.st, r.swap, r.maxcap, dp.pool_ctrl, dp.pool_slots, dp.refcnt,
                                  dp.header, dp.meta, dp.data, dp.stats, self.slot, bufs[k:], n - k))
                k += got
                if r.st[2] == 1:  # P_BAD: cannot resynchronise
                    r.done = True
                    break
                if k >= n:
                    break
                if got == 0 and dp.free_count == 0:
                    break  # pool empty: resume later, nothing lost
                if r.refill():
                    continue
                # End of file.
                pending = int(r.st[1] - r.st[0])
                if r.follow:
                    break
                if pending:
                    self.count_drop("bad_frame")  # the file ends inside a record
                    r.st[0] = r.st[1]
                if r.loop and k > k_at_rewind:
                    r.rewind()
                    k_at_rewind = k
                    continue
                if not r.loop:
                    r.done = True
                break
            return k

    @property
    def rx_done(self) -> bool:
        """True once a non-looping, non-following reader reached the end of its file."""
        return self._reader is not None and self._reader.done

    # -- transmit -------------------------------------------------------------

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        if self._wfd is None:
            self.count_drop("no_tx_port", n)
            self.dp.free(bufs[:n].copy(), n)
            return n
        with self._tx_lock:
            if self.closed or self._wfd is None:
                self.count_drop("link_down", n)
                self.dp.free(bufs[:n].copy(), n)
                return n
            dp = self.dp
            need = n * (REC_HDR + DATA_ROOM)
            if len(self._outbuf) < need:
                self._outbuf = np.zeros(need, np.uint8)
            ns = time.time_ns()
            size = int(pcap_records(self._outbuf, dp.meta, dp.data, bufs, n, ns // 1_000_000_000,
                                    (ns // 1000) % 1_000_000))
            view = memoryview(self._outbuf)[:size]  # type: ignore[arg-type]
            pos = 0
            try:
                while pos < size:
                    pos += os.write(self._wfd, view[pos:])
            except OSError:
                self.count_error()
                if pos:
                    # Keep the file parseable: cut it back to the last complete burst.
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._wfd, os.lseek(self._wfd, -pos, os.SEEK_CUR))
                        os.lseek(self._wfd, 0, os.SEEK_END)
                return 0
            nbytes = size - n * REC_HDR
            stat_add(self.stats, TX_PACKETS, n)
            stat_add(self.stats, TX_BYTES, nbytes)
            if len(self._scratch) < n:
                self._scratch = np.empty(n, np.int32)
            self._scratch[:n] = bufs[:n]
            dp.free(self._scratch, n)
            return n

    def close(self) -> None:
        with self._rx_lock, self._tx_lock:
            if self.closed:
                return
            self.closed = True
            if self._reader is not None:
                self._reader.close()
            if self._wfd is not None:
                os.close(self._wfd)
                self._wfd = None

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
