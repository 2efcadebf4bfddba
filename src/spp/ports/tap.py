"""``tap:N`` — a TAP device (``spptapN`` unless named otherwise) for VMs and containers.

The port opens ``/dev/net/tun`` with ``IFF_TAP | IFF_NO_PI`` (plus ``IFF_MULTI_QUEUE``
with ``multi_queue=True``), non-blocking, and brings the device up.  Use it with
``qemu -netdev tap,ifname=spptap0,script=no,downscript=no`` or move it into a
container's network namespace: the descriptor keeps working after the move.  The
device we create disappears when the port closes (it is not persistent).  IPv6 is
switched off on the host side of the device (``ipv6=True`` keeps it) so the kernel's
own router solicitations and MLD reports do not pollute the port.

Naming (interface names are host-wide, while ``tap:N`` is per stack): option
``name=IFNAME``, else the stack's config ``{"tap": {"N": "IFNAME"}}``, else SPP's
``spptapN`` (spp-primary ``--tap N=IFNAME`` writes that config).  A name already taken
by an interface this stack did not create — another spp stack's ``tap:N`` (a different
``--file-prefix``, even in this process), a VM's tap, any other device — is refused
with an error naming it and the ways to choose another; ``attach=True`` attaches to an
existing (persistent, e.g. ``ip tuntap add NAME mode tap``) TAP device on purpose.
Creation itself is collision-proof: the device is made under a kernel-chosen temporary
name (``spptmp%d``) and renamed to the wanted one, which the kernel refuses atomically
if the name was taken meanwhile.  The queues of one multi-queue port (``tap:Nnq1``...
with ``multi_queue=True``) attach to the device their port created in the same stack
and process.

Each frame costs one system call (a TAP has no batch interface), so the compiled burst
loops call ``readv``/``write`` directly, without the GIL and without a Python object per
frame: rx reads into fresh pool buffers until the device has nothing more
(``EAGAIN``) or the burst is full; tx writes until the kernel refuses (``EAGAIN``: the
accepted prefix is returned and the caller counts ``tx_full``).

Accounting: rx frames < 14 bytes → ``runt``; longer than ``DATA_ROOM`` → ``too_long``
(read into a scratch tail and discarded); no free buffer at all → the waiting frames
(up to a burst) are read into a scratch area and counted ``nombuf``.  tx runt →
``runt``; a write refused with ``EIO`` (device down) or ``EBADFD`` (device deleted)
→ the burst is accepted, freed and counted ``link_down``; any other refusal
(``EINVAL``...) → that frame is accepted and counted ``bad_frame`` plus an error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct
import threading
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.base import Port, PortError, PortId, register_driver
from spp.ports.burst_tail import rx_burst_tail, tx_burst_tail
from spp.ports.native import KIND_TAP
from spp.runtime import libc, quiesce
from spp.runtime.dataplane import BUF_SIZE, DATA_ROOM, ETHER_MIN, HEADROOM, Dataplane, pool_alloc, pool_free
from spp.runtime.rawmem import raw_array
from spp.runtime.stats import ERRORS, REASON, stat_add

log = logging.getLogger(__name__)

TUNSETIFF: Final = 0x400454CA
IFF_TAP: Final = 0x0002
IFF_NO_PI: Final = 0x1000
IFF_MULTI_QUEUE: Final = 0x0100
SIOCGIFFLAGS: Final = 0x8913
IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40
SCRATCH: Final = 65536
EAGAIN: Final = errno.EAGAIN
EIO: Final = errno.EIO
EBADFD: Final = errno.EBADFD
TUNGETIFF: Final = 0x800454D2
#: Kernel template for the temporary name a new device gets before it is renamed.
TMP_TEMPLATE: Final = "spptmp%d"

_RUNT: Final = REASON["runt"]
_TOO_LONG: Final = REASON["too_long"]
_BAD: Final = REASON["bad_frame"]
_NOMBUF: Final = REASON["nombuf"]
_LINK_DOWN: Final = REASON["link_down"]
_NO_NRT: dict[str, Any] = {"_nrt": False}
#: The port's state words (``TapPort._st``, int64), read and written by the compiled kernels:
#: the descriptor (-1 once closed), rx's last errno, tx's last errno, tx frames refused as bad,
#: link errors (writes refused because the device is down or deleted).
TS_FD, TS_RXERR, TS_TXERR, TS_TXBAD, TS_LINKERR = range(5)
TS_LEN: Final = 8
#: Columns of a tap port's row for the compiled worker loop (:meth:`TapPort.native_view`):
#: addresses of the state words, the rx iovec and the rx scratch area.
TP_ST, TP_IOV, TP_SCR = range(3)
TP_COLS: Final = 3

_readv = libc.readv
_write = libc.write
_errno_location = libc.errno_location

# The TAP devices this process holds open: interface name -> [(stack prefix, port id, ifindex)].
_held: dict[str, list[tuple[str, PortId, int]]] = {}
_held_lock = threading.Lock()


@njit(cache=True, nogil=True, **_NO_NRT)
def tap_rx(fd: int, iov: np.ndarray, scratch: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray,
           refcnt: np.ndarray, header: np.ndarray, meta: np.ndarray, data: np.ndarray, stats: np.ndarray,
           slot: int, out: np.ndarray, n: int, res: np.ndarray) -> int:
    """Read up to ``n`` frames from tap ``fd`` into fresh buffers ``out[:k]``; return ``k``.

    ``res[0]`` receives the errno that ended the burst (0: the burst filled up).
    """
    got = pool_alloc(pctrl, pslots, refcnt, meta, out, 0, n)
    k = 0
    nbytes = 0
    runt = 0
    toolong = 0
    nomb = 0
    err = 0
    base = data.ctypes.data
    iov[2] = scratch.ctypes.data
    iov[3] = scratch.shape[0]
    while k < got:
        b = out[k]
        iov[0] = base + b * BUF_SIZE + HEADROOM
        iov[1] = DATA_ROOM
        r = _readv(fd, iov.ctypes.data, 2)
        if r < 0:
            err = _errno_location()[0]
            if err == 4:  # EINTR: try again
                continue
            break
        if r < ETHER_MIN:
            runt += 1
            continue
        if r > DATA_ROOM:
            toolong += 1
            continue
        meta[b, 0] = HEADROOM
        meta[b, 1] = r
        meta[b, 2] = slot
        nbytes += r
        k += 1
    if got == 0:
        # No buffer: take frames off the device into the scratch area and count them lost.
        iov[0] = scratch.ctypes.data
        iov[1] = scratch.shape[0]
        iov[3] = 0
        for _ in range(n):
            r = _readv(fd, iov.ctypes.data, 2)
            if r < 0:
                err = _errno_location()[0]
                break
            nomb += 1
    res[0] = err
    rx_burst_tail(pctrl, pslots, refcnt, header, out, got, k, stats[slot], nbytes, runt, _TOO_LONG, toolong,
                  _NOMBUF, nomb)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def tap_tx(fd: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
           meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
           scratch: np.ndarray, res: np.ndarray) -> int:
    """Write ``ids[:n]`` to tap ``fd``; return the accepted prefix ``k`` (all freed).

    Stops at ``EAGAIN`` (not accepted) or ``EIO`` (accepted up to there; ``res[0]`` = EIO
    and the caller drops the rest as ``link_down``).  Other errors drop that frame
    (``bad_frame``, ``res[1]`` counts them).
    """
    base = data.ctypes.data
    k = 0
    sent = 0
    nbytes = 0
    runt = 0
    bad = 0
    err = 0
    while k < n:
        b = ids[k]
        ln = meta[b, 1]
        if ln < ETHER_MIN:
            runt += 1
            k += 1
            continue
        r = _write(fd, base + b * BUF_SIZE + meta[b, 0], ln)
        if r < 0:
            e = _errno_location()[0]
            if e == 4:
                continue
            if e in (EAGAIN, EIO, EBADFD):
                err = e
                break
            bad += 1
            k += 1
            continue
        sent += 1
        nbytes += ln
        k += 1
    res[0] = err
    res[1] = bad
    tx_burst_tail(pctrl, pslots, refcnt, header, ids, k, scratch, stats[slot], sent, nbytes, runt, _BAD, bad)
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def tap_send(st: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
             meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
             scratch: np.ndarray) -> int:
    """A tap port's transmit (``st``: the port's state words): the accepted prefix length.

    -1: the port is closed (nothing taken; the caller counts ``link_down``).  Frames the
    device refuses as bad count an error each; a device down or deleted (``EIO``,
    ``EBADFD``) takes the rest of the burst as ``link_down``.  The Python port and the
    compiled worker loop both transmit through here.
    """
    fd = st[TS_FD]
    if fd < 0:
        return -1
    k: int = tap_tx(fd, pctrl, pslots, refcnt, header, meta, data, stats, slot, ids, n, scratch,
                    st[TS_TXERR : TS_TXBAD + 1])
    row = stats[slot]
    stat_add(row, ERRORS, st[TS_TXBAD])
    if (st[TS_TXERR] == EIO or st[TS_TXERR] == EBADFD) and k < n:
        st[TS_LINKERR] += 1
        stat_add(row, _LINK_DOWN, n - k)
        for i in range(n - k):
            scratch[i] = ids[k + i]
        pool_free(pctrl, pslots, refcnt, header, scratch, 0, n - k)
        k = n
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def tap_rx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray, n: int) -> int:
    """:func:`tap_rx` for a compiled worker (``row``: ``TP_*`` columns, arrays by address)."""
    st = raw_array(row[TP_ST], TS_LEN, np.int64)
    fd = st[TS_FD]
    if fd < 0:
        return 0
    k: int = tap_rx(fd, raw_array(row[TP_IOV], 4, np.uint64), raw_array(row[TP_SCR], SCRATCH, np.uint8), pctrl,
                    pslots, refcnt, header, meta, data, stats, slot, out, n, st[TS_RXERR : TS_RXERR + 1])
    return k


@njit(cache=True, nogil=True, **_NO_NRT)
def tap_tx_at(row: np.ndarray, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray, header: np.ndarray,
              meta: np.ndarray, data: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray, n: int,
              scratch: np.ndarray) -> int:
    """:func:`tap_send` for a compiled worker."""
    k: int = tap_send(raw_array(row[TP_ST], TS_LEN, np.int64), pctrl, pslots, refcnt, header, meta, data, stats,
                      slot, ids, n, scratch)
    return k


class TapPort(Port):
    """A TAP device; see the module docstring."""

    ptype = "tap"
    native_kind = KIND_TAP

    def __init__(self, dp: Dataplane, pid: PortId, name: str | None = None, multi_queue: bool = False,
                 ipv6: bool = False, up: bool = True, attach: bool = False) -> None:
        super().__init__(dp, pid)
        self.name = name if name is not None else _name_from_config(dp, pid)
        if not self.name or len(self.name) > 15 or "/" in self.name or " " in self.name or "%" in self.name:
            raise PortError(f"{pid}: invalid TAP name {self.name!r}: need 1..15 characters, no '/', '%' or spaces")
        flags = IFF_TAP | IFF_NO_PI | (IFF_MULTI_QUEUE if multi_queue else 0)
        with _held_lock:
            ifindex = _ifindex(self.name)
            if ifindex is not None:
                self._check_may_attach(ifindex, multi_queue, attach)
                self.fd, _ = self._tunsetiff(self.name, flags, existed=True)
                self.created = False
            else:
                self.fd, ifindex = self._create(flags)
                self.created = True
            self.ifindex = ifindex
            _held.setdefault(self.name, []).append((dp.prefix, pid, ifindex))
        self.multi_queue = multi_queue
        if not ipv6:
            with contextlib.suppress(OSError), open(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6", "w") as f:
                f.write("1")
        if up:
            self._set_up()
        self._iov = np.zeros(4, np.uint64)
        self._rx_scratch = np.zeros(SCRATCH, np.uint8)
        self._scratch = np.empty(256, np.int32)
        self._st = np.zeros(TS_LEN, np.int64)
        self._st[TS_FD] = self.fd

    @property
    def link_errors(self) -> int:
        """Writes the device refused because it was down or deleted."""
        return int(self._st[TS_LINKERR])

    def _check_may_attach(self, ifindex: int, multi_queue: bool, attach: bool) -> None:
        """Refuse to attach to the existing interface ``self.name`` unless it is meant.

        Only a device a port of the same stack (data plane) in this process opened counts
        as ours: two stacks in one process collide like two on one host.
        """
        pid, name = self.id, self.name
        ours = [p for prefix, p, idx in _held.get(name, []) if prefix == self.dp.prefix and idx == ifindex]
        other = next((p for p in ours if (p.ptype, p.index) != (pid.ptype, pid.index)), None)
        if other is not None:
            raise PortError(f"{pid}: cannot attach TAP {name!r}: {other} of this process already uses that "
                            f"name; give {pid} another one (name=IFNAME)")
        if ours and not multi_queue:
            raise PortError(f"{pid}: cannot attach TAP {name!r}: {ours[0]} already holds it; several queues of "
                            f"one TAP need multi_queue=True on each")
        if not ours and not attach:
            raise PortError(
                f"{pid}: cannot attach TAP {name!r}: the name is taken by an interface this stack did not "
                f"create (another spp stack's {pid.ptype}:{pid.index}, a VM's tap or another device); choose "
                f"another name (spp-primary --tap {pid.index}=IFNAME, i.e. the stack config "
                f"{{\"tap\": {{\"{pid.index}\": \"IFNAME\"}}}}, or the port option name=IFNAME), delete the "
                f"interface, or pass attach=True to attach to a persistent TAP device on purpose")

    def _tunsetiff(self, name: str, flags: int, existed: bool) -> tuple[int, str]:
        """Open ``/dev/net/tun`` and bind it to TAP ``name``; return (fd, the device's name).

        ``name`` may be a kernel template (``...%d``): a new device gets a free name.
        """
        pid = self.id
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise PortError(f"{pid}: cannot open /dev/net/tun: {e.strerror} (needs root and the tun module)") from None
        try:
            res = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
        except OSError as e:
            os.close(fd)
            if e.errno == errno.EBUSY and existed:
                raise PortError(f"{pid}: cannot attach TAP {name!r}: another program holds it (EBUSY); choose "
                                f"another name with the option name=IFNAME") from None
            hint = (" (an existing device of that name is not a TAP, or was made with other flags: "
                    "try multi_queue=True/False or another name=)") if existed else ""
            raise PortError(f"{pid}: cannot attach TAP {name!r}: {e.strerror}{hint}") from None
        return fd, res[:16].rstrip(b"\0").decode()

    def _create(self, flags: int) -> tuple[int, int]:
        """Create the device under a temporary name, rename it to ``self.name``; return (fd, ifindex).

        The rename fails with ``EEXIST`` if the name was taken since we looked: the new
        device then vanishes with its descriptor and the name's owner is left alone.
        """
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError

        fd, tmp = self._tunsetiff(TMP_TEMPLATE, flags, existed=False)
        try:
            with IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=tmp)
                if not idx:
                    raise PortError(f"{self.id}: the new TAP {tmp!r} vanished before it could be renamed "
                                    f"to {self.name!r}")
                try:
                    ipr.link("set", index=idx[0], ifname=self.name)
                except NetlinkError as e:
                    if e.code == errno.EEXIST:
                        raise PortError(
                            f"{self.id}: cannot create TAP {self.name!r}: the name was taken by another "
                            f"interface meanwhile; choose another name with the option name=IFNAME") from None
                    raise PortError(f"{self.id}: cannot name the new TAP {self.name!r}: "
                                    f"{os.strerror(e.code)}") from None
            return fd, int(idx[0])
        except BaseException:
            os.close(fd)
            raise

    def _set_up(self) -> None:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=self.name)
            if idx:
                ipr.link("set", index=idx[0], state="up")

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        if self.closed:
            return 0
        dp = self.dp
        return int(tap_rx(self.fd, self._iov, self._rx_scratch, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header,
                          dp.meta, dp.data, dp.stats, self.slot, bufs, n, self._st[TS_RXERR : TS_RXERR + 1]))

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        if len(self._scratch) < n:
            self._scratch = np.empty(max(n, 2 * len(self._scratch)), np.int32)
        dp = self.dp
        k = int(tap_send(self._st, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data, dp.stats,
                         self.slot, bufs, n, self._scratch))
        if k < 0:
            self.count_drop("link_down", n)
            self.dp.free(bufs[:n].copy(), n)
            return n
        return k

    def native_view(self) -> np.ndarray:
        """The port's row for a compiled worker (``TP_*`` columns): arrays the port keeps for its life."""
        row = np.zeros(TP_COLS, np.int64)
        row[TP_ST] = self._st.__array_interface__["data"][0]
        row[TP_IOV] = self._iov.__array_interface__["data"][0]
        row[TP_SCR] = self._rx_scratch.__array_interface__["data"][0]
        return row

    def fileno(self) -> int | None:
        return None if self.closed else self.fd

    @property
    def visible(self) -> bool:
        """Whether the device is in our network namespace (it may have been moved)."""
        try:
            socket.if_nametoindex(self.name)
        except OSError:
            return False
        return True

    @property
    def link(self) -> str:
        """``up``, ``down`` (administratively or no carrier), or ``gone`` (closed or deleted).

        A device moved into another namespace still carries traffic through our
        descriptor; its flags cannot be read from here, so it reports ``up``.
        """
        if self.closed:
            return "gone"
        try:
            fcntl.ioctl(self.fd, TUNGETIFF, bytes(40))
        except OSError:
            return "gone"  # the device was deleted under us (EBADFD)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", self.name.encode(), 0))
        except OSError:
            return "up"  # moved to another namespace
        fl = struct.unpack_from("16sH", res)[1]
        return "up" if fl & (IFF_UP | IFF_RUNNING) == (IFF_UP | IFF_RUNNING) else "down"

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._st[TS_FD] = -1
            # A compiled worker may be in a burst on the descriptor: close it only after a grace
            # period, or a new file could get its number and receive our frames.
            self._callbacks_changed()
            if not quiesce.synchronize():
                log.warning("%s: a worker did not pass a quiescent point in time; closing the device anyway", self.id)
            os.close(self.fd)
            with _held_lock:
                held = _held.get(self.name, [])
                with contextlib.suppress(ValueError):
                    held.remove((self.dp.prefix, self.id, self.ifindex))
                if not held:
                    _held.pop(self.name, None)

    def describe(self) -> dict[str, Any]:
        return {
            "port": str(self.id),
            "driver": "tap",
            "iface": self.name,
            "ifindex": self.ifindex,
            "created": self.created,
            "multi_queue": self.multi_queue,
            "link": self.link,
            "visible": self.visible,
        }


def _ifindex(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _name_from_config(dp: Dataplane, pid: PortId) -> str:
    """The interface name for ``pid``: the stack's ``{"tap": {"N": NAME}}`` entry, else ``spptapN``."""
    conf = dp.config().get("tap", {})
    if not isinstance(conf, dict):
        raise PortError(f"{pid}: the stack's 'tap' config must map port numbers to interface names, got {conf!r}")
    name = conf.get(str(pid.index), f"spptap{pid.index}")
    if not isinstance(name, str):
        raise PortError(f"{pid}: the stack's 'tap' config entry {pid.index} must be an interface name, got {name!r}")
    return name


@register_driver("tap")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    return TapPort(dp, pid, **opts)
