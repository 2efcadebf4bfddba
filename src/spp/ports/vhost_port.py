"""``vhost:N`` — spp as the vhost-user **backend** of a VM or of DPDK's virtio-user.

A frontend (QEMU's ``vhost-user`` netdev, DPDK's ``net_virtio_user``) connects to a
unix socket, ``/tmp/sockN`` by default as in SPP (option ``path=...``).  spp listens
(server mode, the default) or, with ``client=True`` (SPP's ``--vhost-client``),
connects to a socket the frontend listens on, retrying every 0.2 s.  The socket file
spp created is removed when the port closes (and at interpreter exit).

Control: one thread per port speaks the vhost-user protocol (12-byte header: request
u32, flags u32 — version 1, reply 0x4, need-reply 0x8 — size u32; file descriptors
arrive as ``SCM_RIGHTS``).  Supported: GET/SET_FEATURES (we offer ``VERSION_1``,
``MRG_RXBUF``, ``ANY_LAYOUT``, ``PROTOCOL_FEATURES``), GET/SET_PROTOCOL_FEATURES
(``MQ``, ``REPLY_ACK``, ``STATUS``), GET_QUEUE_NUM (1 queue pair), SET/RESET_OWNER,
SET_MEM_TABLE (regions mapped, see :mod:`spp.ports.vhost_mem`),
SET_VRING_NUM/BASE/ADDR/KICK/CALL/ERR/ENABLE, GET_VRING_BASE (stops the ring),
GET/SET_STATUS.  Anything else is answered with a failure when the frontend asked for
a reply and otherwise logged and ignored.  A frontend that disconnects (or crashes)
leaves the port waiting for the next one: nothing in spp restarts.

Data: queue 0 is the guest's receive queue (what spp transmits), queue 1 its transmit
queue (what spp receives).  The compiled bodies are in :mod:`spp.ports.vhost_ring`.
We poll: ``used.flags`` carries ``VRING_USED_F_NO_NOTIFY`` so the guest does not kick
us, and we signal the call eventfd after a burst only when the guest did not set
``VRING_AVAIL_F_NO_INTERRUPT`` (DPDK's virtio-user polls and sets it).  A lock per
port keeps the control thread from changing or unmapping guest memory under a burst
of :meth:`rx_burst`/:meth:`tx_burst`; a spin lock per queue (in the compiled bodies)
keeps two threads out of one queue.

The compiled worker loop drives vhost ports itself (:meth:`VhostPort.native_view`):
it reaches guest memory through the address the plan recorded, without the port's
lock.  So a memory change (a new ``SET_MEM_TABLE``, a disconnect) stops the queues,
bumps the plan generation (workers rebuild their plans) and waits for a grace period
(:func:`spp.runtime.quiesce.synchronize`) before unmapping the old memory.

Accounting (every lost frame counted once, on this port's row):

* rx (from the guest): runt → ``runt``, longer than ``DATA_ROOM`` → ``too_long``, a
  broken descriptor chain → ``bad_frame``.  No free buffer: the frames stay in the
  guest's ring (back-pressure; the guest counts its own drops).
* tx (to the guest): no avail descriptor → ``tx_burst`` returns the prefix that fit and
  the caller counts the rest ``tx_full`` (:attr:`Port.full_reason`).  A frame that can
  never fit the guest's buffers → taken, ``too_long``.
* **no frontend, or its receive queue not running** (connecting, stopped, disconnected,
  or broken: the guest published an avail index more than a ring ahead):
  ``tx_burst`` *accepts* the burst, frees it and counts ``link_down`` — the same
  decision as ``phy``: a missing guest must not back-pressure the caller's buffers,
  and ``tx_full`` would misname the cause.  rx returns 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
import struct
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numba import njit

from spp.ports.base import Port, PortError, PortId
from spp.ports.native import KIND_VHOST
from spp.ports.vhost_mem import GuestMemory, GuestMemoryError, Region
from spp.ports.vhost_ring import (
    Q_AVAIL,
    Q_BROKEN,
    Q_CALL,
    Q_COLS,
    Q_DESC,
    Q_HDR,
    Q_LAST_AVAIL,
    Q_MRG,
    Q_NUM,
    Q_READY,
    Q_USED,
    Q_USED_IDX,
    VRING_USED_F_NO_NOTIFY,
    guest_to_pool,
    pool_to_guest,
)
from spp.runtime import quiesce
from spp.runtime.dataplane import Dataplane, pool_free
from spp.runtime.rawmem import raw_array
from spp.runtime.stats import REASON, stat_add

log = logging.getLogger(__name__)

# --- vhost-user protocol constants ------------------------------------------------
GET_FEATURES: Final = 1
SET_FEATURES: Final = 2
SET_OWNER: Final = 3
RESET_OWNER: Final = 4
SET_MEM_TABLE: Final = 5
SET_LOG_BASE: Final = 6
SET_LOG_FD: Final = 7
SET_VRING_NUM: Final = 8
SET_VRING_ADDR: Final = 9
SET_VRING_BASE: Final = 10
GET_VRING_BASE: Final = 11
SET_VRING_KICK: Final = 12
SET_VRING_CALL: Final = 13
SET_VRING_ERR: Final = 14
GET_PROTOCOL_FEATURES: Final = 15
SET_PROTOCOL_FEATURES: Final = 16
GET_QUEUE_NUM: Final = 17
SET_VRING_ENABLE: Final = 18
SEND_RARP: Final = 19
NET_SET_MTU: Final = 20
SET_STATUS: Final = 39
GET_STATUS: Final = 40

REQUEST_NAMES: Final[dict[int, str]] = {
    GET_FEATURES: "GET_FEATURES", SET_FEATURES: "SET_FEATURES", SET_OWNER: "SET_OWNER", RESET_OWNER: "RESET_OWNER",
    SET_MEM_TABLE: "SET_MEM_TABLE", SET_LOG_BASE: "SET_LOG_BASE", SET_LOG_FD: "SET_LOG_FD",
    SET_VRING_NUM: "SET_VRING_NUM", SET_VRING_ADDR: "SET_VRING_ADDR", SET_VRING_BASE: "SET_VRING_BASE",
    GET_VRING_BASE: "GET_VRING_BASE", SET_VRING_KICK: "SET_VRING_KICK", SET_VRING_CALL: "SET_VRING_CALL",
    SET_VRING_ERR: "SET_VRING_ERR", GET_PROTOCOL_FEATURES: "GET_PROTOCOL_FEATURES",
    SET_PROTOCOL_FEATURES: "SET_PROTOCOL_FEATURES", GET_QUEUE_NUM: "GET_QUEUE_NUM",
    SET_VRING_ENABLE: "SET_VRING_ENABLE", SEND_RARP: "SEND_RARP", NET_SET_MTU: "NET_SET_MTU",
    SET_STATUS: "SET_STATUS", GET_STATUS: "GET_STATUS",
}

FLAG_VERSION: Final = 0x1
FLAG_REPLY: Final = 0x4
FLAG_NEED_REPLY: Final = 0x8
HEADER: Final = struct.Struct("<III")
MAX_PAYLOAD: Final = 4096
MAX_FDS: Final = 8
VRING_NOFD: Final = 0x100
VRING_IDX_MASK: Final = 0xFF

# Feature bits (virtio 1.x and vhost-user).
F_NET_MRG_RXBUF: Final = 15
F_ANY_LAYOUT: Final = 27
F_PROTOCOL_FEATURES: Final = 30
F_VERSION_1: Final = 32
OFFERED_FEATURES: Final = (1 << F_NET_MRG_RXBUF) | (1 << F_ANY_LAYOUT) | (1 << F_PROTOCOL_FEATURES) | (1 << F_VERSION_1)

PF_MQ: Final = 0
PF_REPLY_ACK: Final = 3
PF_STATUS: Final = 16
OFFERED_PROTOCOL_FEATURES: Final = (1 << PF_MQ) | (1 << PF_REPLY_ACK) | (1 << PF_STATUS)

#: Virtqueues we keep state for (one queue pair is used: 0 = guest rx, 1 = guest tx).
MAX_QUEUES: Final = 8
RXQ: Final = 0  # the guest's receive queue: spp transmits into it
TXQ: Final = 1  # the guest's transmit queue: spp receives from it
MAX_RING: Final = 32768

_LINK_DOWN = REASON["link_down"]


#: Columns of a vhost port's row in the worker loop's ``vh`` table: guest memory address (0:
#: none mapped) and size, address of the port's queue state (``Q_COLS`` int64 per queue),
#: first row and count of its region table (stored in ``vh`` itself, after the ports' rows).
VH_MEM, VH_SIZE, VH_STATE, VH_REG0, VH_NREG = range(5)
VH_COLS = 5
_QROW = 8 * Q_COLS


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def vhost_rx_at(vh: np.ndarray, v: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray,
              meta: np.ndarray, data: np.ndarray, header: np.ndarray, stats: np.ndarray, slot: int, out: np.ndarray,
              n: int, note: np.ndarray) -> int:
    """Receive up to ``n`` frames from vhost port ``vh[v]``'s guest transmit queue into ``out``.

    ``note[0]`` is set when a queue wants a call (interrupt) or turned broken (the port's
    :meth:`VhostPort.after_native` then runs).
    """
    addr = vh[v, VH_MEM]
    if addr == 0:
        return 0
    q = raw_array(vh[v, VH_STATE] + _QROW * TXQ, Q_COLS, np.int64)
    if q[Q_READY] == 0:
        return 0
    size = vh[v, VH_SIZE]
    r0 = vh[v, VH_REG0]
    k: int = guest_to_pool(raw_array(addr, size, np.uint8), raw_array(addr, size >> 1, np.uint16),
                           raw_array(addr, size >> 2, np.uint32), raw_array(addr, size >> 3, np.uint64),
                           vh[r0 : r0 + vh[v, VH_NREG]], q, q[Q_HDR], pctrl, pslots, refcnt, meta, data, header,
                           stats, slot, out, n)
    if q[Q_CALL] or q[Q_BROKEN]:
        note[0] = 1
    return k


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def vhost_tx_at(vh: np.ndarray, v: int, pctrl: np.ndarray, pslots: np.ndarray, refcnt: np.ndarray,
              meta: np.ndarray, data: np.ndarray, header: np.ndarray, stats: np.ndarray, slot: int, ids: np.ndarray,
              n: int, note: np.ndarray) -> int:
    """Send ``ids[:n]`` into vhost port ``vh[v]``'s guest receive queue; return how many it took.

    -1: the queue is not running (no guest memory, not ready, or broken): nothing taken.
    """
    addr = vh[v, VH_MEM]
    if addr == 0:
        return -1
    q = raw_array(vh[v, VH_STATE] + _QROW * RXQ, Q_COLS, np.int64)
    k = -1
    if q[Q_READY] != 0 and q[Q_BROKEN] == 0:
        size = vh[v, VH_SIZE]
        r0 = vh[v, VH_REG0]
        k = pool_to_guest(raw_array(addr, size, np.uint8), raw_array(addr, size >> 1, np.uint16),
                          raw_array(addr, size >> 2, np.uint32), raw_array(addr, size >> 3, np.uint64),
                          vh[r0 : r0 + vh[v, VH_NREG]], q, q[Q_HDR], q[Q_MRG] != 0, pctrl, pslots, refcnt, meta,
                          data, header, stats, slot, ids, n)
        if k == 0 and q[Q_BROKEN] != 0:
            k = -1
    if q[Q_CALL] or q[Q_BROKEN]:
        note[0] = 1
    return k


class VhostProtocolError(Exception):
    """The frontend sent something we cannot follow; the connection is closed."""


@dataclass
class _Vring:
    """Control-side facts about one virtqueue (the data path reads ``state``)."""

    num: int = 0
    base: int = 0
    desc_uva: int = 0
    avail_uva: int = 0
    used_uva: int = 0
    has_addr: bool = False
    kick_fd: int = -1
    call_fd: int = -1
    kicked: bool = False
    enabled: bool = False


@dataclass
class _Session:
    """Everything one frontend connection negotiated; dropped on disconnect."""

    features: int = 0
    protocol_features: int = 0
    status: int = 0
    memory: GuestMemory | None = None
    vrings: list[_Vring] = field(default_factory=lambda: [_Vring() for _ in range(MAX_QUEUES)])

    @property
    def hdr_len(self) -> int:
        return 12 if self.features & ((1 << F_VERSION_1) | (1 << F_NET_MRG_RXBUF)) else 10

    @property
    def mrg(self) -> bool:
        return bool(self.features & (1 << F_NET_MRG_RXBUF))


def _close_fd(fd: int) -> None:
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)


def _remove_socket(path: str, ino: int) -> None:
    """Remove ``path`` if it is still the socket we created (inode ``ino``)."""
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        if stat.S_ISSOCK(st.st_mode) and st.st_ino == ino:
            os.unlink(path)


class VhostPort(Port):
    """A vhost-user backend port; see the module docstring."""

    ptype = "vhost"
    native_kind = KIND_VHOST

    def __init__(self, dp: Dataplane, pid: PortId, path: str | None = None, client: bool = False) -> None:
        super().__init__(dp, pid)
        self.path = path if path is not None else f"/tmp/sock{pid.index}"
        self.client = bool(client)
        self.state = np.zeros((MAX_QUEUES, Q_COLS), np.int64)
        self._lock = threading.Lock()
        self._session = _Session()
        self._mem: GuestMemory | None = None
        self._dummy8 = np.zeros(8, np.uint8)
        self._regs = np.zeros((0, 4), np.int64)
        self._hdr_len = 12
        self._mrg = False
        self._call_fds = [-1] * MAX_QUEUES
        self._conn: socket.socket | None = None
        self._listen: socket.socket | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self.connections = 0  # frontends that connected so far
        self._broken_logged = False
        self._note = np.zeros(1, np.int64)  # set by the kernels when a queue wants a call or broke
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if not self.client:
            self._listen = self._bind()
        self._thread = threading.Thread(target=self._run, name=f"vhost-{pid}", daemon=True)
        self._thread.start()

    # -- socket set-up ----------------------------------------------------------

    def _bind(self) -> socket.socket:
        path = self.path
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            raise PortError(f"{self.id}: cannot create socket {path}: directory {parent} does not exist")
        if os.path.lexists(path):
            st = os.lstat(path)
            if not stat.S_ISSOCK(st.st_mode):
                raise PortError(f"{self.id}: {path} exists and is not a socket; remove it or pass path=...")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale socket of a process that is gone
            else:
                raise PortError(f"{self.id}: {path} is in use by another vhost-user backend; pass path=...")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            sock.listen(1)
        except OSError as e:
            sock.close()
            raise PortError(f"{self.id}: cannot listen on {path}: {e.strerror}") from None
        sock.setblocking(False)
        ino = os.lstat(path).st_ino
        self._finalizer = weakref.finalize(self, _remove_socket, path, ino)
        return sock

    # -- state seen by users ----------------------------------------------------

    @property
    def connected(self) -> bool:
        """A frontend is connected (its queues may still be setting up)."""
        return self._conn is not None

    def running(self, queue: int) -> bool:
        """Queue ``queue`` (0: guest rx, 1: guest tx) is moving frames."""
        return bool(self.state[queue, Q_READY])

    # -- the data path ----------------------------------------------------------

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        if self.state[TXQ][Q_READY] == 0 or n <= 0:
            return 0
        dp = self.dp
        with self._lock:
            k = int(vhost_rx_at(self._table(), 0, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data,
                                dp.header, dp.stats, self.slot, bufs, n, self._note))
            self._after_burst(TXQ)
        return k

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        dp = self.dp
        with self._lock:
            k = int(vhost_tx_at(self._table(), 0, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data,
                                dp.header, dp.stats, self.slot, bufs, n, self._note))
            self._after_burst(RXQ)
        if k < 0 and n > 0:  # no frontend, or its receive queue is not running: take, free, count link_down
            stat_add(self.stats, _LINK_DOWN, n)
            pool_free(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, bufs, 0, n)
        return n if k < 0 else k

    def _table(self) -> np.ndarray:
        """This port alone as the loop's ``vh`` table: its row, then its region rows (call with the lock)."""
        mem = self._mem
        state = self.state.__array_interface__["data"][0]
        if mem is None or mem.closed:
            return np.array([[0, 0, state, 1, 0]], np.int64)
        regs = mem.regs
        vh = np.zeros((1 + len(regs), VH_COLS), np.int64)
        vh[0] = mem.mem.__array_interface__["data"][0], mem.size, state, 1, len(regs)
        vh[1:, : regs.shape[1]] = regs
        return vh

    def native_view(self) -> tuple[int, int, int, np.ndarray]:
        """What the compiled worker loop needs: ``(mem address, mem size, state address, regs)``.

        Address 0 when no guest memory is mapped (the queues are down).  The values
        stay valid until the plan generation changes and a grace period has passed.
        """
        with self._lock:
            mem = self._mem
            state = self.state.__array_interface__["data"][0]
            if mem is None or mem.closed:
                return 0, 0, state, np.zeros((1, 4), np.int64)
            return mem.mem.__array_interface__["data"][0], mem.size, state, mem.regs.copy()

    def after_native(self) -> None:
        """After a compiled loop call touched the queues: what :meth:`_after_burst` does, for both."""
        for qi in (RXQ, TXQ):
            self._after_burst(qi)

    def _after_burst(self, qi: int) -> None:
        """Signal queue ``qi``'s call eventfd if a burst asked for it; report a broken queue once."""
        q = self.state[qi]
        if q[Q_CALL]:
            q[Q_CALL] = 0
            self._notify(qi)
        if q[Q_BROKEN] and not self._broken_logged:
            self._broken_logged = True
            log.error("%s: the guest's %s queue published an impossible avail index; queue ignored until "
                      "the guest sets it up again", self.id, "receive" if qi == RXQ else "transmit")

    def _memory_changed(self, old: GuestMemory | None) -> None:
        """Workers rebuild their plans; ``old`` is unmapped once none can still be using it."""
        self._callbacks_changed()  # the plan generation: a memory change is a plan change too
        if old is None:
            return
        if quiesce.synchronize():
            old.close()
        else:  # leak it rather than unmap memory a worker may still read
            log.warning("%s: a worker did not pass a quiescent point in time; the old guest memory stays mapped",
                        self.id)

    def _notify(self, qi: int) -> None:
        fd = self._call_fds[qi]
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.eventfd_write(fd, 1)

    # -- control thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                conn = self._connect() if self.client else self._accept()
                if conn is None:
                    continue
                self.connections += 1
                log.info("%s: frontend connected on %s", self.id, self.path)
                try:
                    self._serve(conn)
                except (OSError, VhostProtocolError) as e:
                    log.warning("%s: closing the frontend connection: %s", self.id, e)
                finally:
                    self._disconnect()
                    log.info("%s: frontend disconnected", self.id)
        except Exception:  # pragma: no cover - a bug; keep the process alive, log it
            log.exception("%s: vhost control thread failed", self.id)

    def _wait(self, sock: socket.socket, timeout: float | None) -> bool:
        """Wait until ``sock`` is readable (True) or the port is closing / timeout (False)."""
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            ready = sel.select(timeout)
        if self._stop.is_set():
            return False
        return any(key.fileobj is sock for key, _ in ready)

    def _accept(self) -> socket.socket | None:
        assert self._listen is not None
        if not self._wait(self._listen, None):
            return None
        try:
            conn, _ = self._listen.accept()
        except (BlockingIOError, InterruptedError):
            return None
        conn.setblocking(True)
        return conn

    def _connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            self._stop.wait(0.2)
            return None
        return sock

    def _serve(self, conn: socket.socket) -> None:
        self._conn = conn
        while True:
            if not self._wait(conn, None):
                return
            msg = self._recv(conn)
            if msg is None:
                return
            req, flags, payload, fds = msg
            try:
                self._handle(conn, req, flags, payload, fds)
            finally:
                for fd in fds:
                    _close_fd(fd)

    def _recv(self, conn: socket.socket) -> tuple[int, int, bytes, list[int]] | None:
        fds: list[int] = []
        cmsg_space = socket.CMSG_SPACE(MAX_FDS * 4)
        data, anc, _flags, _ = conn.recvmsg(HEADER.size, cmsg_space, getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        for level, typ, raw in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                usable = len(raw) - len(raw) % 4
                fds.extend(np.frombuffer(raw[:usable], np.int32).tolist())
        if not data:
            for fd in fds:
                _close_fd(fd)
            return None
        try:
            while len(data) < HEADER.size:
                more = conn.recv(HEADER.size - len(data))
                if not more:
                    raise VhostProtocolError("connection closed inside a message header")
                data += more
            req, flags, size = HEADER.unpack(data)
            if size > MAX_PAYLOAD:
                raise VhostProtocolError(f"request {req}: payload of {size} bytes (at most {MAX_PAYLOAD})")
            payload = b""
            while len(payload) < size:
                more = conn.recv(size - len(payload))
                if not more:
                    raise VhostProtocolError(f"request {req}: connection closed inside the payload")
                payload += more
        except BaseException:
            for fd in fds:
                _close_fd(fd)
            raise
        return req, flags, payload, fds

    @staticmethod
    def _reply(conn: socket.socket, req: int, payload: bytes) -> None:
        conn.sendall(HEADER.pack(req, FLAG_VERSION | FLAG_REPLY, len(payload)) + payload)

    def _handle(self, conn: socket.socket, req: int, flags: int, payload: bytes, fds: list[int]) -> None:
        s = self._session
        name = REQUEST_NAMES.get(req, str(req))
        log.debug("%s: %s flags=%#x size=%d fds=%d", self.id, name, flags, len(payload), len(fds))
        replied = False
        ok = True

        def u64() -> int:
            if len(payload) < 8:
                raise VhostProtocolError(f"{name}: payload of {len(payload)} bytes, expected 8")
            return int(struct.unpack_from("<Q", payload)[0])

        def state() -> tuple[int, int]:
            if len(payload) < 8:
                raise VhostProtocolError(f"{name}: payload of {len(payload)} bytes, expected 8 (index, num)")
            idx, num = struct.unpack_from("<II", payload)
            if idx >= MAX_QUEUES:
                raise VhostProtocolError(f"{name}: queue {idx} out of range (at most {MAX_QUEUES})")
            return int(idx), int(num)

        def vring_fd() -> tuple[int, int]:
            val = u64()
            idx = val & VRING_IDX_MASK
            if idx >= MAX_QUEUES:
                raise VhostProtocolError(f"{name}: queue {idx} out of range (at most {MAX_QUEUES})")
            if val & VRING_NOFD:
                return idx, -1
            if not fds:
                raise VhostProtocolError(f"{name}: no file descriptor came with the message")
            return idx, fds.pop(0)  # ours now: not closed by _serve

        if req == GET_FEATURES:
            self._reply(conn, req, struct.pack("<Q", OFFERED_FEATURES))
            replied = True
        elif req == SET_FEATURES:
            feats = u64()
            if feats & ~OFFERED_FEATURES:
                log.warning("%s: frontend set features %#x we did not offer", self.id, feats & ~OFFERED_FEATURES)
            with self._lock:
                s.features = feats & OFFERED_FEATURES
                self._hdr_len = s.hdr_len
                self._mrg = s.mrg
                self.state[:, Q_HDR] = self._hdr_len
                self.state[:, Q_MRG] = int(self._mrg)
        elif req == GET_PROTOCOL_FEATURES:
            self._reply(conn, req, struct.pack("<Q", OFFERED_PROTOCOL_FEATURES))
            replied = True
        elif req == SET_PROTOCOL_FEATURES:
            s.protocol_features = u64() & OFFERED_PROTOCOL_FEATURES
        elif req == GET_QUEUE_NUM:
            self._reply(conn, req, struct.pack("<Q", 1))
            replied = True
        elif req in (SET_OWNER, RESET_OWNER):
            pass
        elif req == SET_MEM_TABLE:
            ok = self._set_mem_table(payload, fds)
        elif req == SET_VRING_NUM:
            idx, num = state()
            if num == 0 or num > MAX_RING or num & (num - 1):
                raise VhostProtocolError(f"SET_VRING_NUM: queue {idx} size {num}: must be a power of two 1..{MAX_RING}")
            s.vrings[idx].num = num
        elif req == SET_VRING_BASE:
            idx, num = state()
            s.vrings[idx].base = num & 0xFFFF
        elif req == SET_VRING_ADDR:
            if len(payload) < 40:
                raise VhostProtocolError(f"SET_VRING_ADDR: payload of {len(payload)} bytes, expected 40")
            idx, _fl, desc, used, avail, _log = struct.unpack_from("<IIQQQQ", payload)
            if idx >= MAX_QUEUES:
                raise VhostProtocolError(f"SET_VRING_ADDR: queue {idx} out of range")
            v = s.vrings[idx]
            v.desc_uva, v.used_uva, v.avail_uva, v.has_addr = desc, used, avail, True
        elif req == SET_VRING_KICK:
            idx, fd = vring_fd()
            v = s.vrings[idx]
            _close_fd(v.kick_fd)
            v.kick_fd = fd
            v.kicked = True
            if not s.protocol_features and not s.features & (1 << F_PROTOCOL_FEATURES):
                v.enabled = True  # without PROTOCOL_FEATURES a ring starts enabled
        elif req == SET_VRING_CALL:
            idx, fd = vring_fd()
            v = s.vrings[idx]
            with self._lock:
                _close_fd(v.call_fd)
                v.call_fd = fd
                self._call_fds[idx] = fd
        elif req == SET_VRING_ERR:
            _idx, fd = vring_fd()
            _close_fd(fd)
        elif req == SET_VRING_ENABLE:
            idx, num = state()
            s.vrings[idx].enabled = bool(num)
        elif req == GET_VRING_BASE:
            idx, _ = state()
            v = s.vrings[idx]
            with self._lock:
                q = self.state[idx]
                last = int(q[Q_LAST_AVAIL]) if q[Q_READY] or v.kicked else v.base
                q[Q_READY] = 0
                v.kicked = False
                v.base = last
            _close_fd(v.kick_fd)
            v.kick_fd = -1
            self._reply(conn, req, struct.pack("<II", idx, last))
            replied = True
        elif req == SET_STATUS:
            s.status = u64()
        elif req == GET_STATUS:
            self._reply(conn, req, struct.pack("<Q", s.status))
            replied = True
        else:
            log.info("%s: unsupported request %s ignored", self.id, name)
            ok = False
        if req in (SET_MEM_TABLE, SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK, SET_VRING_ENABLE,
                   SET_FEATURES):
            ok = self._update_queues() and ok
        if not replied and flags & FLAG_NEED_REPLY and s.protocol_features & (1 << PF_REPLY_ACK):
            self._reply(conn, req, struct.pack("<Q", 0 if ok else 1))

    def _set_mem_table(self, payload: bytes, fds: list[int]) -> bool:
        if len(payload) < 8:
            raise VhostProtocolError(f"SET_MEM_TABLE: payload of {len(payload)} bytes, expected at least 8")
        (nreg,) = struct.unpack_from("<I", payload)
        if len(payload) < 8 + 32 * nreg:
            raise VhostProtocolError(f"SET_MEM_TABLE: {nreg} regions announced but {len(payload)} bytes came")
        regions = [Region(*struct.unpack_from("<QQQQ", payload, 8 + 32 * i)) for i in range(nreg)]
        try:
            mem = GuestMemory(regions, fds[:nreg])
        except GuestMemoryError as e:
            log.error("%s: SET_MEM_TABLE refused: %s", self.id, e)
            return False
        with self._lock:
            old, self._mem = self._mem, mem
            self._session.memory = mem
            self._regs = mem.regs
            for i in range(MAX_QUEUES):
                self.state[i, Q_READY] = 0  # re-translated by _update_queues
        self._memory_changed(old)
        return True

    def _update_queues(self) -> bool:
        """Recompute which queues run and where their rings are in ``mem``."""
        s = self._session
        ok = True
        with self._lock:
            mem = self._mem
            for i, v in enumerate(s.vrings):
                q = self.state[i]
                ready = mem is not None and v.has_addr and v.num > 0 and v.kicked and v.enabled
                if not ready or mem is None:
                    q[Q_READY] = 0
                    continue
                if q[Q_READY]:
                    continue
                num = v.num
                desc = mem.uva_to_host(v.desc_uva, 16 * num)
                avail = mem.uva_to_host(v.avail_uva, 6 + 2 * num)
                used = mem.uva_to_host(v.used_uva, 6 + 8 * num)
                if desc < 0 or avail < 0 or used < 0 or desc % 16 or avail % 2 or used % 4:
                    log.error("%s: queue %d: ring addresses desc=%#x avail=%#x used=%#x are outside guest memory "
                              "or misaligned", self.id, i, v.desc_uva, v.avail_uva, v.used_uva)
                    ok = False
                    continue
                q[Q_NUM] = num
                q[Q_DESC] = desc
                q[Q_AVAIL] = avail
                q[Q_USED] = used
                q[Q_BROKEN] = 0
                q[Q_CALL] = 0
                self._broken_logged = False
                used_idx = int(mem.mem16[(used >> 1) + 1])
                base = v.base
                if used_idx != base:
                    # We never hold descriptors, so what the guest saw completed is where we resume.
                    log.info("%s: queue %d: base %d but used.idx %d; resuming at used.idx", self.id, i, base,
                             used_idx)
                    base = used_idx
                q[Q_LAST_AVAIL] = base
                q[Q_USED_IDX] = base
                q[Q_HDR] = self._hdr_len
                q[Q_MRG] = int(self._mrg)
                mem.mem16[used >> 1] = VRING_USED_F_NO_NOTIFY
                q[Q_READY] = 1
                log.info("%s: queue %d running (%d descriptors)", self.id, i, num)
        return ok

    def _disconnect(self) -> None:
        # Queues stop first, so that once ``connected`` reads False no burst touches the guest.
        with self._lock:
            self.state[:, Q_READY] = 0
            mem, self._mem = self._mem, None
            self._regs = np.zeros((0, 4), np.int64)
            self._call_fds = [-1] * MAX_QUEUES
            s, self._session = self._session, _Session()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        for v in s.vrings:
            _close_fd(v.kick_fd)
            _close_fd(v.call_fd)
        if mem is not None:
            self._memory_changed(mem)

    # -- Port API ---------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        return {
            "port": str(self.id),
            "path": self.path,
            "mode": "client" if self.client else "server",
            "connected": self.connected,
            "features": f"{self._session.features:#x}",
            "queues_running": [i for i in range(MAX_QUEUES) if self.state[i, Q_READY]],
        }

    def close(self) -> None:
        """Stop the control thread, drop the frontend, unmap its memory, remove our socket."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._disconnect()
        if self._listen is not None:
            self._listen.close()
        if self._finalizer is not None:
            self._finalizer()
        _close_fd(self._wake_r)
        _close_fd(self._wake_w)
        super().close()


def make_vhost_port(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    unknown = set(opts) - {"path", "client"}
    if unknown:
        raise PortError(f"{pid}: unknown option(s) {', '.join(sorted(unknown))}; vhost takes path=..., client=True")
    if pid.queue:
        raise PortError(f"{pid}: vhost ports have one queue pair; use vhost:{pid.index}")
    return VhostPort(dp, pid, **opts)
