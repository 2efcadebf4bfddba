"""``spp-pcap``: capture a port into pcapng files (SPP 19.11's spp_pcap).

::

    spp-pcap --client-id N -s HOST:PORT -l CORES -c PORT --out-dir DIR
             [--fsize BYTES] [--snaplen N] [--count FILES] [--ring R] [--file-prefix P]

Commands (:mod:`spp.lang`, grammar ``pcap``): ``status``, ``start``, ``stop``, ``exit``.

Capturing never takes traffic away from the port's user:

* a ``phy`` port is opened outside the receive fanout (``fanout=False``), like
  tcpdump's socket: the kernel hands this process its own copy of every frame;
* any other port (ring, vhost, tap, ...) is tapped by a *shared, shallow* port mirror
  (``pcapN``, direction rx) to ``ring:R`` (``--ring``, default the stack's last ring),
  attached by whichever process receives on the port; spp-pcap reads ``ring:R``.
  A ring that nobody receives on (another process only sends to it) has nobody to
  attach the tap: when its frames wait ``ORPHAN_AFTER`` seconds with nobody dequeuing
  them, spp-pcap receives from the ring itself (``status``: ``"self_rx": true``) until
  the capture stops, taking nothing from anyone.

Two threads, SPP's roles: *receive* (bursts from the source, copies the first
``--snaplen`` bytes of each frame with its time and original length into a bounded
queue, frees the buffers) and *write* (pcapng: a section header, one interface
block naming the port with nanosecond timestamps, one enhanced packet block per
frame; captured length and original length both recorded).  A file is closed
with an interface statistics block (``isb_ifdrop``: frames this file lost to a full
queue) and a new one started when the next block would pass ``--fsize``; at most
``--count`` files are kept (the oldest are removed).  A full queue counts drops
(``status``: ``dropped``).  A failed write (disk full) stops the capture; ``status``
then says ``idle`` with the ``error``.
"""

from __future__ import annotations

import argparse
import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import numpy as np

from spp import lang, ops
from spp.lang.wire import error as error_reply
from spp.lang.wire import success
from spp.ports.base import Port, PortError, PortId, PortTable
from spp.runtime import pause
from spp.runtime.dataplane import M_LEN, M_OFF, M_ORIGLEN, Dataplane
from spp.runtime.ringcore import C_TAIL, ring_count

log = logging.getLogger("spp.pcap")

SHB_TYPE: Final = 0x0A0D0D0A
IDB_TYPE: Final = 1
ISB_TYPE: Final = 5
EPB_TYPE: Final = 6
BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
LINKTYPE_ETHERNET: Final = 1
QUEUE_MAX: Final = 65536
DEFAULT_FSIZE: Final = 1_000_000_000
BURST: Final = 32
#: How long frames may wait in a tapped ring that nobody dequeues before spp-pcap
#: receives them itself (seconds; longer than any pause of a live consumer).
ORPHAN_AFTER: Final = 0.5

Clock = Callable[[], int]


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def section_header() -> bytes:
    """A pcapng section header block (little-endian, version 1.0, length unknown)."""
    return _block(SHB_TYPE, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + _opt(0, b""))


def interface_block(name: str, snaplen: int) -> bytes:
    """Interface 0: Ethernet, ``if_name`` ``name``, ``if_tsresol`` 9 (nanoseconds)."""
    opts = _opt(2, name.encode()) + _opt(9, bytes([9])) + _opt(0, b"")
    return _block(IDB_TYPE, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, snaplen) + opts)


def packet_block(ts_ns: int, data: bytes, orig_len: int) -> bytes:
    """An enhanced packet block on interface 0: ``len(data)`` captured of ``orig_len``."""
    body = struct.pack("<IIIII", 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(data), orig_len)
    return _block(EPB_TYPE, body + data + bytes(-len(data) % 4))


def statistics_block(ts_ns: int, received: int, dropped: int) -> bytes:
    """Interface statistics for interface 0: ``isb_ifrecv`` and ``isb_ifdrop``."""
    opts = _opt(4, struct.pack("<Q", received)) + _opt(5, struct.pack("<Q", dropped)) + _opt(0, b"")
    return _block(ISB_TYPE, struct.pack("<III", 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF) + opts)


class CaptureWriter:
    """pcapng files of one capture: rotation at ``fsize``, at most ``count`` files (0: no limit)."""

    def __init__(self, out_dir: Path, port: PortId, *, fsize: int, count: int, snaplen: int,
                 clock: Clock = time.time_ns) -> None:
        self.out_dir = out_dir
        self.port = port
        self.fsize = fsize
        self.count = count
        self.snaplen = snaplen
        self.clock = clock
        self.stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(clock() / 1e9))
        self.files: list[Path] = []
        self._seq = 0
        self._f: BinaryIO | None = None
        self._size = 0
        self._packets = 0
        self._recv = 0
        self._drop = 0

    @property
    def filename(self) -> str:
        return str(self.files[-1]) if self.files else ""

    def _open(self) -> None:
        self._seq += 1
        name = f"{self.port.ptype}{self.port.index}.{self._seq}.pcapng"
        path = self.out_dir / f"spp_pcap.{self.stamp}.{name}"
        n = 1
        while path.exists():  # a restart within the same second
            n += 1
            path = self.out_dir / f"spp_pcap.{self.stamp}-{n}.{name}"
        self._f = open(path, "wb")  # noqa: SIM115 - kept open across calls, closed by _close
        self.files.append(path)
        head = section_header() + interface_block(str(self.port), self.snaplen or 262144)
        self._f.write(head)
        self._size, self._packets, self._recv, self._drop = len(head), 0, 0, 0
        while self.count and len(self.files) > self.count:
            old = self.files.pop(0)
            old.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._f is None:
            return
        f, self._f = self._f, None
        try:
            f.write(statistics_block(self.clock(), self._recv, self._drop))
            f.flush()
        finally:
            f.close()

    def write(self, ts_ns: int, data: bytes, orig_len: int) -> None:
        """Append one frame (rotating first if it would pass ``fsize``); OSError on a failed write."""
        block = packet_block(ts_ns, data, orig_len)
        if self._f is None:
            self._open()
        elif self._packets and self._size + len(block) > self.fsize:
            self._close()
            self._open()
        assert self._f is not None
        self._f.write(block)
        self._size += len(block)
        self._packets += 1
        self._recv += 1

    def dropped(self, n: int) -> None:
        """``n`` frames lost before writing (counted in this file's statistics block)."""
        self._drop += n
        self._recv += n

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()

    def close(self) -> None:
        self._close()


@dataclass
class _Frame:
    ts: int
    data: bytes
    orig: int


class Pcap:
    """State and commands of one spp-pcap (served by :class:`~spp.control.secondary.SecondaryClient`)."""

    process = "pcap"

    def __init__(self, dp: Dataplane, client_id: int, cores: Sequence[int], port: PortId, out_dir: Path, *,
                 fsize: int = DEFAULT_FSIZE, snaplen: int = 0, count: int = 0, ring: int | None = None,
                 clock: Clock = time.time_ns) -> None:
        self.dp = dp
        self.client_id = client_id
        self.cores = list(cores)
        self.port = port
        self.out_dir = out_dir
        self.fsize = fsize
        self.snaplen = snaplen
        self.count = count
        self.ring = dp.layout.n_rings - 1 if ring is None else ring
        self.clock = clock
        self.ports = PortTable(dp)
        self.error: str | None = None
        self.dropped = 0
        self.captured = 0
        self.writer: CaptureWriter | None = None
        self._queue: list[_Frame] = []
        self._pending_drops = 0
        self._qlock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.RLock()
        self._mirror: str | None = None
        self._agent: Any = None
        self.self_rx = False

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    # -- the wire -----------------------------------------------------------------

    def execute(self, line: str) -> dict[str, Any]:
        try:
            cmd = lang.parse(line, "pcap")
            if isinstance(cmd, lang.Status):
                return success(info=self.status())
            if isinstance(cmd, lang.Start):
                self.start()
            elif isinstance(cmd, lang.Stop):
                self.stop()
            elif isinstance(cmd, lang.Exit):
                self.exit()
        except (lang.CommandError, CaptureError) as e:
            return error_reply(str(e))
        return success()

    def status(self) -> dict[str, Any]:
        """SPP's pcap status ``info``: ``client-id``, ``status``, ``core`` (receive and write roles)."""
        with self._lock:
            rx_core = self.cores[1] if len(self.cores) > 1 else self.cores[0]
            wr_core = self.cores[2] if len(self.cores) > 2 else rx_core
            info: dict[str, Any] = {
                "client-id": self.client_id,
                "status": "running" if self.running else "idle",
                "core": [
                    {"core": rx_core, "role": "receive", "rx_port": [{"port": str(self.port)}]},
                    {"core": wr_core, "role": "write", "filename": self.writer.filename if self.writer else ""},
                ],
                "captured": self.captured,
                "dropped": self.dropped,
                "files": [str(p) for p in self.writer.files] if self.writer else [],
                "self_rx": self.self_rx,
            }
            if self.error is not None:
                info["error"] = self.error
            return info

    # -- actions --------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self.running:
                raise CaptureError(f"capture of {self.port} is already running: stop it first")
            check_out_dir(self.out_dir)
            if self._threads:  # a capture that stopped itself (disk full): clean it up first
                self.stop()
            source = self._source()
            self.error = None
            self.dropped = self.captured = 0
            self.self_rx = False
            self.writer = CaptureWriter(self.out_dir, self.port, fsize=self.fsize, count=self.count,
                                        snaplen=self.snaplen, clock=self.clock)
            self._stop.clear()
            self._threads = [threading.Thread(target=self._receive, args=(source,), name="spp-pcap-rx", daemon=True),
                             threading.Thread(target=self._write, name="spp-pcap-write", daemon=True)]
            for t in self._threads:
                t.start()
            log.info("capturing %s into %s", self.port, self.out_dir)

    def stop(self) -> None:
        """Stop capturing: what was received is written, the last file closed.  Idempotent."""
        with self._lock:
            self._stop.set()
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join(10)
            self._threads = []
            self._untap()
            self.ports.close_all()

    def _untap(self) -> None:
        """Remove the tap's shared mirror, if there is one."""
        name, self._mirror = self._mirror, None
        if name is not None:
            from spp.mirror import MirrorError

            try:
                self._agent.unregister(name)
            except MirrorError as e:
                log.warning("removing the tap %s: %s", name, e)

    def exit(self) -> None:
        self.stop()

    # -- capture threads ----------------------------------------------------------------

    def _source(self) -> Port:
        """The port to receive from: phy outside the fanout, else the tap's ring (mirror registered)."""
        try:
            if self.port.ptype == "phy":
                port = self.ports.get(self.port, fanout=False)
                port.fileno()  # the rx socket exists from now on: every frame after 'start' is captured
                return port
            from spp.mirror import MirrorAgent, MirrorError

            ring = PortId("ring", self.ring)
            if ring == self.port:
                raise CaptureError(f"cannot capture {self.port}: it is spp-pcap's own tap ring (--ring)")
            if self._agent is None:
                self._agent = MirrorAgent(self.dp, self.ports)
            name = f"pcap{self.client_id}"
            try:
                self._agent.register(name, str(self.port), str(ring), "rx", copy="shallow")
            except MirrorError as e:
                raise CaptureError(f"cannot tap {self.port}: {e}") from None
            self._mirror = name
            return self.ports.get(ring)
        except (PortError, ValueError, OSError) as e:
            if isinstance(e, CaptureError):
                raise
            raise CaptureError(f"cannot capture {self.port}: {e}") from None

    def _orphaned(self) -> Callable[[], bool] | None:
        """For a tapped ring: a check that is True once its frames wait unread for ``ORPHAN_AFTER`` s."""
        if self.port.ptype != "ring":
            return None
        ctrl = self.dp.ring_ctrl[self.port.index]
        seen = [int(ctrl[C_TAIL]), time.monotonic()]

        def orphaned() -> bool:
            tail, now = int(ctrl[C_TAIL]), time.monotonic()
            if tail != seen[0] or not ring_count(ctrl):  # someone dequeues, or nothing waits
                seen[:] = [tail, now]
                return False
            return now - seen[1] >= ORPHAN_AFTER

        return orphaned

    def _receive(self, port: Port) -> None:
        # This thread takes buffers and touches rings: it pauses with the workers when the primary
        # stops the world to reclaim a dead process's buffers (spp.runtime.pause), holding none.
        checkpoint = pause.Checkpoint(self.dp)
        try:
            self._receive_bursts(port, checkpoint)
        finally:
            checkpoint.close(lambda: None)

    def _receive_bursts(self, port: Port, checkpoint: pause.Checkpoint) -> None:
        dp = self.dp
        bufs = np.empty(BURST, np.int32)
        snap = self.snaplen
        idle = 0
        sources = [port]
        orphaned = self._orphaned()
        next_check = 0.0
        while True:
            if checkpoint.requested():
                checkpoint.hold(lambda: None)
            stopping = self._stop.is_set()
            if orphaned is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + ORPHAN_AFTER / 10
                if orphaned():  # nobody receives on the ring: receive from it here, without the tap
                    self._untap()
                    sources.append(self.ports.get(self.port))
                    self.self_rx, orphaned = True, None
                    log.info("nobody receives on %s: spp-pcap receives from it itself", self.port)
            k = 0
            for src in sources:
                k = src.rx_burst(bufs)
                if k:
                    break
            if k:
                idle = 0
                now = self.clock()
                frames = []
                for b in bufs[:k]:
                    off, ln = int(dp.meta[b, M_OFF]), int(dp.meta[b, M_LEN])
                    orig = max(ln, int(dp.meta[b, M_ORIGLEN]))
                    cl = min(ln, snap) if snap else ln
                    frames.append(_Frame(now, bytes(dp.data[b, off : off + cl]), orig))
                dp.free(bufs, k)
                with self._qlock:
                    room = QUEUE_MAX - len(self._queue)
                    self._queue.extend(frames[:room])
                    lost = max(0, len(frames) - room)
                    self._pending_drops += lost
                self.dropped += lost
            elif stopping:
                return
            else:
                idle += 1
                if idle > 8:
                    time.sleep(0.0005)

    def _write(self) -> None:
        writer = self.writer
        assert writer is not None
        try:
            while True:
                rx_done = not any(t.is_alive() for t in self._threads[:1])
                with self._qlock:
                    batch, self._queue = self._queue, []
                    drops, self._pending_drops = self._pending_drops, 0
                if drops:
                    writer.dropped(drops)
                for f in batch:
                    writer.write(f.ts, f.data, f.orig)
                self.captured += len(batch)
                if batch:
                    writer.flush()
                elif rx_done and self._stop.is_set():
                    break
                else:
                    time.sleep(0.001)
            writer.close()
        except OSError as e:
            self.error = f"capture stopped: cannot write {writer.filename}: {e.strerror or e}"
            log.error("%s", self.error)
            self._stop.set()
            try:
                writer.close()
            except OSError:
                pass


class CaptureError(ValueError):
    """A capture command cannot be carried out now; nothing was changed."""


def check_out_dir(path: Path) -> None:
    """Raise :class:`CaptureError` unless ``path`` is an existing, writable directory."""
    if not path.is_dir():
        raise CaptureError(f"--out-dir {path}: no such directory (create it, or pick an existing one)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise CaptureError(f"--out-dir {path}: not writable by this user")


# -- command line -------------------------------------------------------------------


def _positive(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = lang.integer(text, what, 1, 1 << 50)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    return parse


def _nonneg(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return lang.integer(text, what, 0, 1 << 30)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _port(text: str) -> PortId:
    try:
        return lang.port_id(text, "-c port")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    from spp.control.nfv import _client_id, _cores, _server

    p = argparse.ArgumentParser(prog="spp-pcap", description="capture a port into pcapng files")
    p.add_argument("--client-id", "-n", dest="client_id", type=_client_id, required=True)
    p.add_argument("-s", "--server", type=_server, default=("127.0.0.1", 6666))
    p.add_argument("-l", dest="lcores", type=_cores, default=None,
                   help="master lcore, receive core, write core (e.g. 0,1,2)")
    p.add_argument("-c", dest="port", type=_port, required=True, help="the port to capture, e.g. phy:0")
    p.add_argument("--out-dir", type=Path, required=True, help="directory of the capture files (must exist)")
    p.add_argument("--fsize", type=_positive("--fsize"), default=DEFAULT_FSIZE,
                   help="start a new file before one passes this many bytes")
    p.add_argument("--snaplen", type=_nonneg("--snaplen"), default=0, help="bytes kept of each frame (0: all)")
    p.add_argument("--count", type=_nonneg("--count"), default=0, help="keep at most this many files (0: all)")
    p.add_argument("--ring", type=_nonneg("--ring"), default=None,
                   help="ring of the tap for non-phy ports (default: the stack's last ring)")
    p.add_argument("--file-prefix", default=None)
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    ops.add_version(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``spp-pcap``."""
    from spp.control.secondary import serve_until_stopped


    args = list(sys.argv[1:] if argv is None else argv)
    eal_prefix = None
    if "--" in args:  # SPP's form: EAL options, then ours
        cut = args.index("--")
        eal, args = args[:cut], args[cut + 1 :]
        eal_p = argparse.ArgumentParser(add_help=False)
        eal_p.add_argument("-l", dest="lcores")
        eal_p.add_argument("--file-prefix")
        ns_eal, _ = eal_p.parse_known_args(eal)
        eal_prefix = ns_eal.file_prefix
        if ns_eal.lcores and "-l" not in args:
            args += ["-l", ns_eal.lcores]
    parser = build_parser()
    ns = parser.parse_args(args)
    try:
        check_out_dir(ns.out_dir)
    except CaptureError as e:
        parser.error(str(e))
    logging.basicConfig(stream=sys.stderr, level=ns.log_level,
                        format=f"%(asctime)s %(levelname)s spp-pcap[{ns.client_id}]: %(message)s")
    prefix = ns.file_prefix or eal_prefix or "spp"
    try:
        dp = Dataplane.attach(prefix)
    except (OSError, RuntimeError, ValueError) as e:
        log.error("cannot attach to the data plane %r: %s", prefix, e)
        return 1
    cores = ns.lcores if ns.lcores is not None else sorted(os.sched_getaffinity(0))
    try:
        if ns.ring is not None:
            dp.check_ring(ns.ring)
        pcap = Pcap(dp, ns.client_id, cores, ns.port, ns.out_dir, fsize=ns.fsize, snaplen=ns.snaplen,
                    count=ns.count, ring=ns.ring)
    except ValueError as e:
        log.error("%s", e)
        dp.close()
        return 2
    host, port = ns.server
    return serve_until_stopped(dp, pcap, host, port, None, f"spp-pcap {ns.client_id}")


if __name__ == "__main__":
    sys.exit(main())
