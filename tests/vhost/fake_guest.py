"""A vhost-user frontend in pure Python (a tiny virtio-net "guest") for tests without testpmd.

It owns a memfd of guest memory with both split virtqueues and their buffers, speaks the
protocol over the unix socket like QEMU does (guest physical addresses in descriptors,
frontend virtual addresses for the rings, and the two deliberately different), and can:

* ``inject(frames)`` — transmit: post frames on the guest's transmit queue (queue 1);
* ``collect(count, timeout)`` — receive: take what the backend put on queue 0 (joining
  mergeable-buffer frames) and re-post the buffers.

Options exercise the backend's corner cases: ``split_header`` puts the 12-byte header in
its own descriptor chained to the data; ``rx_buf`` small makes frames span several
receive buffers (``VIRTIO_NET_F_MRG_RXBUF``).
"""

from __future__ import annotations

import array
import mmap
import os
import socket
import struct
from collections.abc import Callable

import numpy as np

from spp.ports import vhost_port as vp
from spp.testing import wait_for

GPA_BASE = 0x4000_0000
UVA_BASE = 0x7F12_3400_0000
MEM_SIZE = 8 << 20
DESC_F_NEXT, DESC_F_WRITE = 1, 2


class FakeGuest:
    """See the module docstring.  ``close()`` disconnects (memory stays for a reconnect)."""

    def __init__(self, path: str, *, num: int = 256, rx_buf: int = 2048, tx_buf: int = 4096,
                 split_header: bool = False, features: int | None = None, listen: bool = False,
                 setup: bool = True) -> None:
        self.path = path
        self.num = num
        self.rx_buf = rx_buf
        self.tx_buf = tx_buf
        self.split_header = split_header
        self.fd = os.memfd_create("fakeguest")
        os.ftruncate(self.fd, MEM_SIZE)
        self.mm = mmap.mmap(self.fd, MEM_SIZE)
        self.mem = np.frombuffer(self.mm, np.uint8)
        self.m16 = self.mem.view(np.uint16)
        self.m32 = self.mem.view(np.uint32)
        self.m64 = self.mem.view(np.uint64)
        # Layout (offsets in the memfd): queue q rings at q * 0x10000, buffers from 0x40000.
        self.rx_base = 0x40000
        self.tx_base = self.rx_base + num * rx_buf
        self.hdr_base = self.tx_base + num * tx_buf  # split-header buffers, 16 bytes each
        assert self.hdr_base + num * 16 <= MEM_SIZE
        self.want_features = vp.OFFERED_FEATURES if features is None else features
        self.features = 0
        self.kick = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
        self.call = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
        self.tx_free = list(range(num))  # descriptor heads we may post on queue 1
        self.tx_avail = 0
        self.tx_used_seen = 0
        self.rx_used_seen = 0
        self.rx_avail = 0
        self.rx_errors = 0
        self._listener: socket.socket | None = None
        self.sock: socket.socket | None = None
        if listen:
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(path)
            self._listener.listen(1)
        else:
            self.connect(setup=setup)

    # -- addresses -----------------------------------------------------------------

    def ring(self, q: int) -> tuple[int, int, int]:
        """Offsets of queue ``q``'s descriptor table, avail ring and used ring."""
        base = q * 0x10000
        return base, base + 0x4000, base + 0x8000

    # -- protocol --------------------------------------------------------------------

    def connect(self, *, setup: bool = True) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        self.sock = sock
        if setup:
            self.setup()

    def accept(self, timeout: float = 10) -> None:
        assert self._listener is not None
        self._listener.settimeout(timeout)
        self.sock, _ = self._listener.accept()
        self.sock.settimeout(None)
        self.setup()

    def msg(self, req: int, payload: bytes = b"", fds: tuple[int, ...] = (), need_reply: bool = False,
            reply: bool = False) -> bytes | None:
        """Send one message; return the reply payload if one is expected."""
        assert self.sock is not None
        flags = vp.FLAG_VERSION | (vp.FLAG_NEED_REPLY if need_reply else 0)
        data = vp.HEADER.pack(req, flags, len(payload)) + payload
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        self.sock.sendmsg([data], anc)
        if not (reply or need_reply):
            return None
        hdr = self._recv_exact(vp.HEADER.size)
        rreq, rflags, size = vp.HEADER.unpack(hdr)
        assert rreq == req and rflags & vp.FLAG_REPLY, (rreq, rflags)
        return self._recv_exact(size)

    def _recv_exact(self, n: int) -> bytes:
        assert self.sock is not None
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("backend closed the connection")
            out += chunk
        return out

    def u64(self, req: int) -> int:
        raw = self.msg(req, reply=True)
        assert raw is not None
        return int(struct.unpack("<Q", raw)[0])

    def setup(self, base: tuple[int, int] = (0, 0)) -> None:
        """The QEMU-style start sequence; queues are running afterwards."""
        offered = self.u64(vp.GET_FEATURES)
        self.features = offered & self.want_features
        self.msg(vp.SET_OWNER)
        self.msg(vp.SET_FEATURES, struct.pack("<Q", self.features))
        if self.features & (1 << vp.F_PROTOCOL_FEATURES):
            pf = self.u64(vp.GET_PROTOCOL_FEATURES)
            self.msg(vp.SET_PROTOCOL_FEATURES, struct.pack("<Q", pf))
        region = struct.pack("<QQQQ", GPA_BASE, MEM_SIZE, UVA_BASE, 0)
        ack = self.msg(vp.SET_MEM_TABLE, struct.pack("<II", 1, 0) + region, (self.fd,),
                       need_reply=bool(self.features & (1 << vp.F_PROTOCOL_FEATURES)))
        assert ack is None or ack == struct.pack("<Q", 0), ack
        for q in (0, 1):
            desc, avail, used = self.ring(q)
            self.msg(vp.SET_VRING_NUM, struct.pack("<II", q, self.num))
            self.msg(vp.SET_VRING_BASE, struct.pack("<II", q, base[q]))
            self.msg(vp.SET_VRING_ADDR, struct.pack("<IIQQQQ", q, 0, UVA_BASE + desc, UVA_BASE + used,
                                                    UVA_BASE + avail, 0))
            self.msg(vp.SET_VRING_KICK, struct.pack("<Q", q), (self.kick[q],))
            self.msg(vp.SET_VRING_CALL, struct.pack("<Q", q), (self.call[q],))
        if base == (0, 0):
            self.post_rx(self.num)
        for q in (0, 1):
            if self.features & (1 << vp.F_PROTOCOL_FEATURES):
                self.msg(vp.SET_VRING_ENABLE, struct.pack("<II", q, 1))
        # A round trip so every message above has been handled when setup returns.
        self.u64(vp.GET_FEATURES)

    def get_vring_base(self, q: int) -> int:
        raw = self.msg(vp.GET_VRING_BASE, struct.pack("<II", q, 0), reply=True)
        assert raw is not None
        idx, num = struct.unpack("<II", raw)
        assert idx == q
        return int(num)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def destroy(self) -> None:
        self.close()
        if self._listener is not None:
            self._listener.close()
            os.unlink(self.path)
        for fd in (*self.kick, *self.call):
            os.close(fd)
        del self.mem, self.m16, self.m32, self.m64
        self.mm.close()
        os.close(self.fd)

    # -- rings -------------------------------------------------------------------------

    @property
    def hdr_len(self) -> int:
        return 12 if self.features & ((1 << vp.F_VERSION_1) | (1 << vp.F_NET_MRG_RXBUF)) else 10

    def _desc(self, q: int, i: int, addr: int, ln: int, flags: int, nxt: int = 0) -> None:
        o = self.ring(q)[0] + 16 * i
        self.m64[o // 8] = addr
        self.m32[o // 4 + 2] = ln
        self.m16[o // 2 + 6] = flags
        self.m16[o // 2 + 7] = nxt

    def _publish_avail(self, q: int, heads: list[int], start: int) -> int:
        _, avail, _ = self.ring(q)
        for j, h in enumerate(heads):
            self.m16[avail // 2 + 2 + (start + j) % self.num] = h
        new = (start + len(heads)) & 0xFFFF
        self.m16[avail // 2 + 1] = new  # one aligned 16-bit store, after the entries
        return new

    def post_rx(self, count: int) -> None:
        """Post ``count`` receive buffers (descriptor i uses buffer i)."""
        heads = []
        for _ in range(count):
            i = self.rx_avail % self.num
            self._desc(0, i, GPA_BASE + self.rx_base + i * self.rx_buf, self.rx_buf, DESC_F_WRITE)
            heads.append(i)
            self.rx_avail += 1
        self._publish_avail(0, heads, self.rx_avail - count)

    def _used(self, q: int) -> tuple[int, int]:
        _, _, used = self.ring(q)
        return used, int(self.m16[used // 2 + 1])

    def reclaim_tx(self) -> None:
        used, idx = self._used(1)
        while self.tx_used_seen != idx:
            e = used // 4 + 1 + 2 * (self.tx_used_seen % self.num)
            self.tx_free.append(int(self.m32[e]))
            self.tx_used_seen = (self.tx_used_seen + 1) & 0xFFFF

    def inject(self, frames: list[bytes], *, raw_desc: Callable[[int], None] | None = None) -> None:
        """Transmit ``frames`` (header + frame per chain); waits for free descriptors if needed."""
        heads: list[int] = []
        hl = self.hdr_len
        need = 2 if self.split_header else 1
        for f in frames:
            if len(self.tx_free) < need:
                self.tx_avail = self._publish_avail(1, heads, self.tx_avail)
                heads = []
                wait_for(lambda: self.reclaim_tx() or len(self.tx_free) >= need, timeout=10,
                         message="the backend to return transmit descriptors")
            i = self.tx_free.pop(0)
            buf = self.tx_base + i * self.tx_buf
            if self.split_header:
                j = self.tx_free.pop(0)
                hb = self.hdr_base + i * 16
                self.mem[hb : hb + hl] = 0
                self._desc(1, i, GPA_BASE + hb, hl, DESC_F_NEXT, j)
                self.mem[buf : buf + len(f)] = np.frombuffer(f, np.uint8)
                self._desc(1, j, GPA_BASE + buf, len(f), 0)
            else:
                self.mem[buf : buf + hl] = 0
                self.mem[buf + hl : buf + hl + len(f)] = np.frombuffer(f, np.uint8)
                self._desc(1, i, GPA_BASE + buf, hl + len(f), 0)
            if raw_desc is not None:
                raw_desc(i)
            heads.append(i)
        self.tx_avail = self._publish_avail(1, heads, self.tx_avail)

    def rx_pending(self) -> int:
        _, idx = self._used(0)
        return (idx - self.rx_used_seen) & 0xFFFF

    def collect(self, count: int, timeout: float) -> list[bytes]:
        """Frames the backend delivered since the last call (waits for ``count``); re-posts buffers."""
        out: list[bytes] = []
        hl = self.hdr_len
        used, _ = self._used(0)

        def take() -> bool:
            while self.rx_pending():
                e = used // 4 + 1 + 2 * (self.rx_used_seen % self.num)
                head, ln = int(self.m32[e]), int(self.m32[e + 1])
                buf = self.rx_base + head * self.rx_buf
                if ln < hl:  # an empty buffer: an rx error for the guest driver (Linux drops it)
                    self.rx_errors += 1
                    self.rx_used_seen = (self.rx_used_seen + 1) & 0xFFFF
                    self.post_rx(1)
                    continue
                nbuf = int(self.m16[(buf + 10) // 2]) if hl == 12 else 1
                assert nbuf >= 1, "num_buffers must be at least 1"
                if self.rx_pending() < nbuf:
                    return False  # the rest of a merged frame is not published yet (cannot happen)
                data = bytes(self.mem[buf + hl : buf + ln])
                for k in range(1, nbuf):
                    e2 = used // 4 + 1 + 2 * ((self.rx_used_seen + k) % self.num)
                    h2, l2 = int(self.m32[e2]), int(self.m32[e2 + 1])
                    b2 = self.rx_base + h2 * self.rx_buf
                    data += bytes(self.mem[b2 : b2 + l2])
                out.append(data)
                self.rx_used_seen = (self.rx_used_seen + nbuf) & 0xFFFF
                self.post_rx(nbuf)
            return len(out) >= count

        try:
            wait_for(take, timeout=timeout)
        except TimeoutError:
            pass
        return out
