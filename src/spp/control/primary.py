"""``spp-primary``: owner of a stack's shared resources, and spp-ctl's primary.

The primary creates the data plane of one ``--file-prefix`` (packet pool, rings,
shared port counters; the phy interface names go into the stack's config, where
the phy driver reads them), connects to spp-ctl's primary port as a TCP client
(reconnecting with backoff) and answers spp-ctl's plain-text commands with JSON:

``status``
    ``{"results":[{"result":"success"}],"info":{...}}``; see :meth:`Primary.status_info`.
``clear``
    zero every port counter of the stack.
``port add ring:N`` / ``port del ring:N``
    mark ring N in use / drain it (its buffers go back to the pool) and mark it unused.
``add PORT`` / ``del PORT`` / ``patch SRC DST`` / ``patch reset`` / ``forward`` / ``stop``
    SPP's forwarder of the primary: the same patch panel as spp-nfv
    (:class:`~spp.control.patch.PatchPanel`), on the second core of ``-l`` (the
    first if there is one); its state is ``forwarder`` in the status.
``launch CLIENT_ID PROC_NAME JSON`` or SPP's ``launch CLIENT_ID PROC_NAME EAL -- APP``
    start ``spp-nfv`` / ``spp-vf`` / ``spp-mirror`` / ``spp-pcap`` (SPP's ``spp_nfv`` ... accepted)
    with the client id, the secondary address of the body's ``app["-s"]``, the
    stack's ``--file-prefix`` and the cores of ``eal["-l"]``.  Children are tracked
    and reaped; they are stopped when the primary exits.
``exit``
    answer, stop launched children, remove the shared-memory segment (unless
    processes the primary did not launch still map it: then it is left to them, and
    the log names them), exit.

Started over an existing segment, the primary adopts it when processes still use it
(a crashed or stopped primary's stack goes on: same pool, rings, counters and phy
configuration) and replaces it when every process that used it is gone, saying
which in its log (:meth:`~spp.runtime.dataplane.Dataplane.open_primary`).  One
primary per stack: a second one is refused.

Anything else gets an SPP error reply whose message lists the valid commands.
SIGTERM and SIGINT behave like ``exit``.

Both our own options and SPP's DPDK-style command line are accepted::

    spp-primary -s 127.0.0.1:5555 --phy veth0,veth1 --file-prefix spp
    spp_primary -l 0 -n 4 --file-prefix spp -- -p 0x03 -n 10 -s 127.0.0.1:5555 --phy veth0,veth1

In the DPDK form, ``-n`` after ``--`` is the number of rings and ``-p`` a mask
selecting phy interfaces from ``--phy`` (bit i selects the i-th one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Final

import numpy as np

from spp import lang
from spp.control.patch import PatchError, PatchPanel
from spp.control.reconnect import BACKOFF_MAX, Backoff, identity, refusal
from spp.lang.wire import command_text, encode_reply, error, receive_command, success
from spp.mirror import handle_port_mirror_command
from spp.ports.base import PortId
from spp.ports.native import RING_ACTIVE
from spp.ports.ring import active_rings, drain_ring
from spp.runtime import members, ringcore
from spp.runtime.dataplane import H_RECLAIMED, PER_TYPE_SLOTS, Dataplane, Layout
from spp.runtime.reclaim import Reclaimed, reclaim_dead
from spp.runtime.stats import row_to_dict

LOG = logging.getLogger("spp.primary")

#: SPP's process names, and ours, to the kind of secondary they start.
PROC_KINDS: Final[Mapping[str, str]] = lang.LAUNCH_KINDS
DEFAULT_PROGRAMS: Final[Mapping[str, str]] = {k: f"spp-{k}" for k in ("nfv", "vf", "mirror", "pcap")}
#: Kinds as numbered in the segment's table of launched processes (append only).
LAUNCH_KINDS: Final = ("nfv", "vf", "mirror", "pcap")
#: Options of the launch body's ``app`` passed on to a launched pcap (SPP's and ours).
PCAP_APP_OPTIONS: Final = ("-c", "--out-dir", "--fsize", "--snaplen", "--count")
DEFAULT_SECONDARY_PORT: Final = 6666
GET_CLIENT_ID: Final = "_get_client_id"
CHILD_STOP_TIMEOUT: Final = 5.0
#: Longest the primary holds the stack's workers while it waits for all of them to pause (s).
RECLAIM_PAUSE: Final = 0.2
#: Back-off between reclaim tries that could not stop the world (s).
RECLAIM_BACKOFF_MIN: Final = 0.5
RECLAIM_BACKOFF_MAX: Final = 30.0


class CommandFailed(Exception):
    """A command cannot be carried out; the message is sent back to spp-ctl."""


@dataclass
class Child:
    """A secondary the primary launched."""

    kind: str
    client_id: int
    argv: list[str]
    popen: subprocess.Popen[bytes] | members.Handle  # a Handle: launched by an earlier primary of the stack
    started: float = field(default_factory=time.time)
    reaped: bool = False
    #: The last lines the child wrote to stderr (they are copied to the primary's stderr too).
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def follow_stderr(self) -> None:
        """Copy the child's stderr to ours, remembering the last lines (a daemon thread)."""
        stream = self.popen.stderr
        if stream is None:
            return

        def pump() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    line = raw.decode(errors="replace").rstrip()
                    self.tail.append(line)
                    with contextlib.suppress(OSError, ValueError):
                        sys.stderr.write(line + "\n")
                        sys.stderr.flush()

        threading.Thread(target=pump, daemon=True, name=f"stderr of {self.kind} {self.client_id}").start()

    def error(self) -> str | None:
        """Why the child exited, when it failed: its exit code and last error line."""
        code = self.popen.poll()
        if code is None or code == 0:
            return None
        lines = [line for line in self.tail if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        last = (errors or lines or [""])[-1].strip()
        how = f"exited with status {code}" if code > 0 else f"killed by signal {-code}"
        return f"{self.kind} {self.client_id} {how}" + (f": {last}" if last else "")

    @property
    def alive(self) -> bool:
        """True while the process runs (polling also reaps it)."""
        return self.popen.poll() is None

    def describe(self) -> dict[str, Any]:
        """Status entry: kind, client id, pid, whether it runs, exit code, command line."""
        code = self.popen.poll()
        return {
            "proc_name": self.kind,
            "client_id": self.client_id,
            "pid": self.popen.pid,
            "alive": code is None,
            "returncode": code,
            "command": shlex.join(self.argv),
            **({"error": error} if (error := self.error()) else {}),
        }


def interface_exists(name: str) -> bool:
    """True if the network interface ``name`` exists in this namespace."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def check_interfaces(names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first interface that does not exist."""
    for name in names:
        if not interface_exists(name):
            known = ", ".join(n for _, n in socket.if_nameindex())
            raise ValueError(f"--phy: no network interface {name!r} (interfaces here: {known})")


def resolve_program(name: str) -> list[str]:
    """The argv prefix that runs console script ``name`` (next to this Python first)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found is not None:
        return [found]
    raise CommandFailed(f"cannot launch: program {name!r} not found (is spp installed in this environment?)")


class Primary:
    """The primary's state and command handling (no I/O except launching).

    ``dp`` is the data plane it owns; ``ctl_host`` the host of spp-ctl (used as
    the default secondary address); ``programs`` maps a secondary kind
    (``vf``/``mirror``) to the command that runs it (default: the ``spp-vf`` /
    ``spp-mirror`` console scripts).  :meth:`handle` is thread-safe.
    """

    def __init__(
        self,
        dp: Dataplane,
        *,
        phy: Sequence[str] = (),
        ctl_host: str = "127.0.0.1",
        lcores: Sequence[int] = (0,),
        programs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.dp = dp
        self.phy = list(phy)
        self.ctl_host = ctl_host
        self.lcores = list(lcores)
        self.programs = {k: list(v) for k, v in (programs or {}).items()}
        self.children: list[Child] = self._adopt_children()
        self.exit_requested = threading.Event()
        self._lock = threading.Lock()
        self._reclaim_blocked: list[int] = []
        self._reclaim_next = 0.0
        self._reclaim_backoff = RECLAIM_BACKOFF_MIN
        self.forwarder = PatchPanel(dp, self.lcores[1] if len(self.lcores) > 1 else self.lcores[0],
                                    owner="spp-primary", pin=len(self.lcores) > 1, owned=self._owned)

    def reclaim(self, now: float | None = None) -> Reclaimed | None:
        """Give back what dead processes of the stack held (:mod:`spp.runtime.reclaim`).

        A try that cannot stop the world (a live process is stopped) holds the other
        workers for at most ``RECLAIM_PAUSE`` seconds; tries then back off (doubling, up
        to ``RECLAIM_BACKOFF_MAX``), so a stopped process costs traffic next to nothing.
        """
        now = time.monotonic() if now is None else now
        if now < self._reclaim_next:
            return None
        with self._lock:
            done = reclaim_dead(self.dp, timeout=RECLAIM_PAUSE)
        if done is not None and (done.done or done.dead != self._reclaim_blocked):
            LOG.warning("%s", done)  # a blocked reclaim is said once, not at every try
        if done is not None and not done.done:
            self._reclaim_backoff = min(self._reclaim_backoff * 2, RECLAIM_BACKOFF_MAX)
            self._reclaim_next = now + self._reclaim_backoff
            self._reclaim_blocked = done.dead
        else:
            self._reclaim_backoff = RECLAIM_BACKOFF_MIN
            self._reclaim_blocked = []
        return done

    # -- commands ---------------------------------------------------------------

    def handle(self, command: str) -> dict[str, Any]:
        """Answer one wire command with its JSON reply (never raises)."""
        text = command.strip().strip("\x00").strip()
        words = text.split()
        with self._lock:
            try:
                if words and words[0] == "port_mirror":  # the shared mirror registry (docs/mirroring.md)
                    return handle_port_mirror_command(self.dp, words)
                return self.apply(lang.parse(text, "primary"))
            except (CommandFailed, lang.CommandError, PatchError) as exc:
                LOG.info("%r failed: %s", text, exc)
                return error(str(exc))
            except Exception as exc:  # a bug must not kill the connection loop
                LOG.exception("%r: internal error", text)
                return error(f"internal error: {exc}")

    def apply(self, cmd: lang.Command) -> dict[str, Any]:
        """Carry out a command of the primary's grammar (:mod:`spp.lang.panel`)."""
        fwd = self.forwarder
        if isinstance(cmd, lang.Status):
            return success(info=self.status_info())
        if isinstance(cmd, lang.Clear):
            self.clear()
        elif isinstance(cmd, lang.Exit):
            self.exit_requested.set()
        elif isinstance(cmd, lang.AddPort):
            self.port("add", str(cmd.port))
        elif isinstance(cmd, lang.DelPort):
            self.port("del", str(cmd.port))
        elif isinstance(cmd, lang.Patch):
            fwd.patch(cmd.src, cmd.dst)
        elif isinstance(cmd, lang.PatchReset):
            fwd.reset()
        elif isinstance(cmd, lang.Forward):
            fwd.forward()
        elif isinstance(cmd, lang.Stop):
            fwd.stop()
        elif isinstance(cmd, lang.Launch):
            self.launch(cmd)
        else:  # pragma: no cover - every command of the grammar is handled above
            raise CommandFailed(f"{lang.render(cmd)!r} is not handled here")
        return success()

    def close(self) -> None:
        """Stop the forwarder (sending what it buffered) and close its ports."""
        self.forwarder.close()

    def status_info(self) -> dict[str, Any]:
        """The ``info`` object of the ``status`` reply.

        ``lcores``; ``phy_ports`` (one entry per ``--phy`` interface:
        ``port``, ``iface``, ``stats``); ``ring_ports`` (rings in use: ``port``,
        ``count`` (frames waiting), ``size``, ``stats``); ``ports`` (other
        ports with non-zero counters); ``pool`` (``n_bufs``, ``free``,
        ``in_use``, ``reclaimed``: buffers given back from dead processes);
        ``processes`` (launched secondaries); ``file_prefix``.
        ``stats`` follows the counter convention of SPEC section 3.
        """
        dp = self.dp
        phy_ports = []
        for i, iface in enumerate(self.phy):
            phy_ports.append(
                {"port": f"phy:{i}", "iface": iface, "stats": row_to_dict(dp.stats[dp.port_slot("phy", i)])}
            )
        ring_ports = []
        for index in active_rings(dp):
            ring_ports.append(
                {
                    "port": f"ring:{index}",
                    "count": int(ringcore.ring_count(dp.ring_ctrl[index])),
                    "size": dp.layout.ring_size,
                    "stats": row_to_dict(dp.stats[dp.port_slot("ring", index)]),
                }
            )
        others = []
        for slot in np.nonzero(dp.stats.any(axis=1))[0]:
            name = dp.slot_name(int(slot))
            ptype = name.split(":")[0]
            if ptype == "ring" or (ptype == "phy" and int(name.split(":")[1]) < len(self.phy)):
                continue
            others.append({"port": name, "stats": row_to_dict(dp.stats[int(slot)])})
        free = dp.free_count
        return {
            "file_prefix": dp.prefix,
            "lcores": list(self.lcores),
            "phy_ports": phy_ports,
            "ring_ports": ring_ports,
            "ports": others,
            "pool": {"n_bufs": dp.n_bufs, "free": free, "in_use": dp.n_bufs - free,
                     "reclaimed": int(dp.header[H_RECLAIMED])},
            "processes": [child.describe() for child in self.children],
            "forwarder": {**self.forwarder.status(), "core": self.forwarder.core},
        }

    def clear(self) -> None:
        """Zero every port counter of the stack."""
        self.dp.stats[:] = 0

    def _owned(self) -> list[PortId]:
        """Ports the forwarder may patch without ``add``: the stack's phy ports and the rings in use."""
        return [*self.forwarder.phy_ports(), *(PortId("ring", i) for i in active_rings(self.dp))]

    def port(self, action: str, spec: str) -> None:
        """``[port] add ring:N`` marks ring N in use; ``[port] del ring:N`` drains it and marks it unused.

        Other ports (vhost, tap, pcap, nullpmd) are added to and deleted from the forwarder.
        """
        pid = lang.port_id(spec)
        if pid.ptype != "ring":
            if action == "add":
                self.forwarder.add_port(pid)
            else:
                self.forwarder.del_port(pid)
            return
        index = pid.index
        users = self.forwarder.patched(pid)
        if action == "del" and users:
            raise CommandFailed(f"{pid} is patched ({', '.join(users)}): patch reset first")
        try:
            self.dp.check_ring(index)
        except ValueError as exc:
            raise CommandFailed(str(exc)) from None
        ctrl = self.dp.ring_ctrl[index]
        if action == "add":
            ctrl[RING_ACTIVE] = 1
            return
        if not ctrl[RING_ACTIVE]:
            raise CommandFailed(f"ring:{index} is not in use")
        freed = drain_ring(self.dp, index)
        ctrl[RING_ACTIVE] = 0
        LOG.info("ring:%d deleted, %d waiting frames freed", index, freed)

    def launch(self, cmd: lang.Launch) -> Child:
        """Start the secondary of ``cmd``; see the module docstring."""
        cid, kind, body = cmd.client_id, cmd.kind, cmd.body
        self.reap()
        for child in self.children:
            if child.kind == kind and child.client_id == cid and child.alive:
                raise CommandFailed(f"launch: {kind} {cid} is already running (pid {child.popen.pid})")
        argv = [*self._program(kind), *self.secondary_args(kind, cid, body)]
        LOG.info("launching %s", shlex.join(argv))
        try:
            popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise CommandFailed(f"launch: cannot start {argv[0]}: {exc}") from None
        child = Child(kind, cid, argv, popen)
        child.follow_stderr()
        self.children.append(child)
        if not members.record_launch(self.dp.launched, popen.pid, LAUNCH_KINDS.index(kind), cid):
            LOG.warning("%s %d: not written down in the stack (table full): a primary adopting the stack "
                        "will not know it", kind, cid)
        return child

    def _adopt_children(self) -> list[Child]:
        """The live secondaries an earlier primary of this stack launched (written down in the segment)."""
        out = []
        for entry in members.launched(self.dp.launched):
            if not 0 <= entry.kind < len(LAUNCH_KINDS):
                continue
            kind = LAUNCH_KINDS[entry.kind]
            LOG.info("adopted %s %d (pid %d), launched by an earlier primary", kind, entry.client_id, entry.pid)
            out.append(Child(kind, entry.client_id, members.cmdline(entry.pid), members.Handle(entry.pid)))
        return out

    def secondary_args(self, kind: str, client_id: int, body: Mapping[str, Any]) -> list[str]:
        """The options passed to a launched secondary, from the launch body."""
        app = body.get("app") if isinstance(body.get("app"), dict) else {}
        eal = body.get("eal") if isinstance(body.get("eal"), dict) else {}
        assert isinstance(app, dict) and isinstance(eal, dict)
        server = app.get("-s") or f"{self.ctl_host}:{DEFAULT_SECONDARY_PORT}"
        args = ["--client-id", str(client_id), "-s", str(server), "--file-prefix", self.dp.prefix]
        cores = eal.get("-l")
        if cores not in (None, ""):
            try:
                lang.parse_cores(str(cores))
            except ValueError as exc:
                raise CommandFailed(f"launch: -l: {exc}") from None
            args += ["-l", str(cores)]
        copy = app.get("--copy")
        if kind == "mirror" and copy not in (None, ""):
            args += ["--copy", str(copy)]
        if kind == "pcap":
            for opt in PCAP_APP_OPTIONS:
                if app.get(opt) not in (None, ""):
                    args += [opt, str(app[opt])]
        return args

    def _program(self, kind: str) -> list[str]:
        if kind in self.programs:
            return list(self.programs[kind])
        return resolve_program(DEFAULT_PROGRAMS[kind])

    # -- children -----------------------------------------------------------------

    def reap(self) -> None:
        """Collect exited children (they stay listed, with their exit code)."""
        for child in self.children:
            code = child.popen.poll()
            if code is not None and not child.reaped:
                LOG.info("%s %d (pid %d) exited with %d", child.kind, child.client_id, child.popen.pid, code)
                child.reaped = True
                members.forget_launch(self.dp.launched, child.popen.pid)

    def stop_children(self, timeout: float = CHILD_STOP_TIMEOUT) -> None:
        """SIGTERM every running child, SIGKILL those still alive after ``timeout`` s."""
        running = [c for c in self.children if c.alive]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.popen.terminate()
        deadline = time.monotonic() + timeout
        for child in running:
            try:
                child.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                LOG.warning("%s %d did not stop; killing it", child.kind, child.client_id)
                child.popen.kill()
                child.popen.wait()


# -- the connection to spp-ctl -------------------------------------------------------


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]`` → ``(host, port)``; ``ValueError`` says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5555")
    return host, int(port)


#: How often the primary looks for dead members of its stack (seconds).
WATCH_PERIOD: Final = 0.5


def watch_members(primary: Primary, stop: threading.Event) -> threading.Thread:
    """Start a thread that reclaims what a dead process of the stack held, until ``stop``."""

    def run() -> None:
        while not stop.wait(WATCH_PERIOD) and not primary.exit_requested.is_set():
            try:
                primary.reclaim()
            except Exception:  # never let a bug here take the primary down
                LOG.exception("reclaiming failed")

    thread = threading.Thread(target=run, name="spp-reclaim", daemon=True)
    thread.start()
    return thread


def serve(primary: Primary, host: str, port: int, stop: threading.Event,
          on_connect: Callable[[], None] | None = None) -> int:
    """Connect to spp-ctl at ``host:port`` and answer commands until ``stop`` or ``exit`` (0).

    Reconnects with exponential backoff (:class:`~spp.control.reconnect.Backoff`)
    whenever the connection cannot be made or drops.  Returns 1 when spp-ctl
    refuses this primary (another live primary is connected).
    """
    backoff = Backoff()
    while not stop.is_set() and not primary.exit_requested.is_set():
        try:
            sock = socket.create_connection((host, port), timeout=2.0)
        except OSError as exc:
            delay, loud = backoff.failed()
            (LOG.info if loud else LOG.debug)("cannot reach spp-ctl at %s:%d (%s); retrying every %.1f s at most",
                                              host, port, exc, BACKOFF_MAX)
            stop.wait(delay)
            continue
        backoff.connected()
        LOG.info("connected to spp-ctl at %s:%d", host, port)
        if on_connect is not None:
            on_connect()
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not stop.is_set():
                sock.settimeout(0.2)
                try:
                    data = receive_command(sock)
                except TimeoutError:
                    primary.reap()
                    continue
                except OSError as exc:
                    LOG.warning("connection to spp-ctl lost: %s", exc)
                    break
                if not data:
                    LOG.warning("spp-ctl closed the connection; reconnecting")
                    break
                text = command_text(data)
                refused = refusal(text)
                if text == GET_CLIENT_ID:  # spp-ctl asks who we are
                    reply = success(process_type="primary", **identity())
                else:
                    reply = success() if refused is not None else primary.handle(text)
                try:
                    sock.settimeout(5.0)
                    sock.sendall(encode_reply(reply))
                except OSError as exc:
                    LOG.warning("cannot answer spp-ctl: %s", exc)
                    break
                if refused is not None:
                    LOG.error("spp-ctl refused this primary: %s", refused)
                    return 1
                if primary.exit_requested.is_set():
                    return 0
        stop.wait(backoff.failed()[0])
    return 0


# -- command line --------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The primary's settings, from either command-line form."""

    server: tuple[str, int]
    phy: list[str]
    file_prefix: str
    layout: Layout
    lcores: list[int]
    programs: dict[str, list[str]]
    log_level: str
    #: ``tap:N`` interface names (``{"N": IFNAME}``) for the stack's config; unnamed ones are ``spptapN``.
    tap: dict[str, str] = field(default_factory=dict)
    log_format: str = "text"
    #: phy ports' driver (``auto``: AF_XDP where the kernel and interface allow it, else AF_PACKET).
    phy_driver: str = "auto"


def build_parser() -> argparse.ArgumentParser:
    """Parser of our own options (the DPDK form is mapped onto them)."""
    parser = argparse.ArgumentParser(
        prog="spp-primary",
        description="Own a stack's packet pool, rings and phy ports; answer spp-ctl.",
    )
    parser.add_argument("-s", "--server", default="127.0.0.1:5555", help="spp-ctl's primary address HOST:PORT")
    parser.add_argument("--phy", action="append", default=[], help="interfaces for phy:0, phy:1, ... (comma list)")
    parser.add_argument("--file-prefix", default="spp", help="name of the stack's shared memory (default: spp)")
    parser.add_argument("--pool-size", type=int, default=Layout.n_bufs, help="packet buffers in the pool")
    parser.add_argument("--rings", type=int, default=Layout.n_rings, help="number of rings")
    parser.add_argument("--ring-size", type=int, default=Layout.ring_size, help="slots per ring (power of two)")
    parser.add_argument("-l", "--lcores", default="0", help="cores of this process (reported in status)")
    parser.add_argument("-p", "--portmask", default=None, help="DPDK-style mask selecting --phy interfaces")
    parser.add_argument("--phy-driver", default="auto", choices=["auto", "af_xdp", "af_packet"],
                        help="phy ports' driver (default auto: AF_XDP where the kernel and the interface allow it, "
                             "else AF_PACKET; each port logs which and why)")
    parser.add_argument(
        "--program", action="append", default=[], metavar="KIND=COMMAND",
        help="command that runs secondaries of KIND (nfv, vf, mirror, pcap) on launch (default: spp-KIND)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--tap", action="append", default=[], metavar="N=IFNAME",
                        help="interface name of tap:N (default spptapN; comma list; DPDK form: "
                             "--vdev net_tapN,iface=IFNAME before --)")
    from spp import ops

    ops.add_log_options(parser)
    ops.add_version(parser)
    return parser


def parse_taps(items: Sequence[str]) -> dict[str, str]:
    """``["0=a,1=b"]`` → ``{"0": "a", "1": "b"}``; ``ValueError`` explains bad text."""
    taps: dict[str, str] = {}
    for item in (x for arg in items for x in arg.split(",") if x):
        index, sep, name = item.partition("=")
        if not sep or not index.isdigit() or not 0 < len(name) <= 15 or any(c in name for c in "/% "):
            raise ValueError(f"--tap {item!r}: expected N=IFNAME (e.g. 0=tapA; 1..15 characters, no '/', '%' "
                             "or spaces)")
        key = str(int(index))
        if int(index) >= PER_TYPE_SLOTS:
            raise ValueError(f"--tap {item!r}: tap:{key} out of range: index must be 0..{PER_TYPE_SLOTS - 1}")
        if key in taps or name in taps.values():
            raise ValueError(f"--tap {item!r}: tap:{key} or {name!r} is named twice")
        taps[key] = name
    return taps


def parse_options(argv: Sequence[str]) -> Options:
    """Parse our options or SPP's ``EAL -- APP`` form; ``SystemExit(2)`` with a message on bad input."""
    argv = list(argv)
    parser = build_parser()
    if "--" in argv:
        cut = argv.index("--")
        eal, app = argv[:cut], argv[cut + 1 :]
        eal_parser = argparse.ArgumentParser(add_help=False)
        eal_parser.add_argument("-l", dest="lcores")
        eal_parser.add_argument("--file-prefix")
        eal_parser.add_argument("--vdev", action="append", default=[])
        eal_known, _ = eal_parser.parse_known_args(eal)
        # After "--", SPP's -n is the number of rings.
        app = ["--rings" if a == "-n" else a for a in app]
        extra = []
        if eal_known.lcores:
            extra += ["-l", eal_known.lcores]
        if eal_known.file_prefix:
            extra += ["--file-prefix", eal_known.file_prefix]
        for vdev in eal_known.vdev:  # DPDK's TAP PMD: net_tapN,iface=IFNAME names tap:N
            dev, *kvs = vdev.split(",")
            iface = dict(kv.partition("=")[::2] for kv in kvs).get("iface")
            if dev.startswith("net_tap") and dev[7:].isdigit() and iface:
                extra += ["--tap", f"{int(dev[7:])}={iface}"]
        args = parser.parse_args([*extra, *app])
    else:
        args = parser.parse_args(argv)
    try:
        server = parse_address(args.server, 5555)
        lcores = lang.parse_cores(args.lcores)
        taps = parse_taps(args.tap)
    except ValueError as exc:
        parser.error(str(exc))
    phy = [name for item in args.phy for name in item.split(",") if name]
    if args.portmask is not None:
        try:
            mask = int(args.portmask, 0)
        except ValueError:
            parser.error(f"-p {args.portmask!r}: expected a port mask such as 0x03")
        if mask >> len(phy):
            parser.error(f"-p {args.portmask}: selects {mask.bit_length()} ports but --phy names {len(phy)}")
        phy = [name for i, name in enumerate(phy) if mask >> i & 1]
    programs: dict[str, list[str]] = {}
    for item in args.program:
        kind, sep, command = item.partition("=")
        if not sep or kind not in DEFAULT_PROGRAMS or not command.strip():
            parser.error(f"--program {item!r}: expected KIND=COMMAND with KIND one of {', '.join(DEFAULT_PROGRAMS)}")
        programs[kind] = shlex.split(command)
    layout = Layout(n_bufs=args.pool_size, n_rings=args.rings, ring_size=args.ring_size)
    try:
        layout.check()
    except ValueError as exc:
        parser.error(str(exc))
    return Options(server, phy, args.file_prefix, layout, lcores, programs, args.log_level, taps, args.log_format,
                   args.phy_driver)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the primary until ``exit``, SIGTERM or SIGINT; return the exit status."""
    from spp import ops

    opts = parse_options(sys.argv[1:] if argv is None else argv)
    ops.setup_logging(opts.log_level, opts.log_format, static={"process": "primary"})
    try:
        check_interfaces(opts.phy)
    except ValueError as exc:
        print(f"spp-primary: {exc}", file=sys.stderr)
        return 2
    try:
        config: dict[str, Any] = {"phy": opts.phy, **({"tap": opts.tap} if opts.tap else {}),
                                  **({"phy_driver": opts.phy_driver} if opts.phy else {})}
        dp, how = Dataplane.open_primary(opts.file_prefix, opts.layout, config=config)
    except FileExistsError as exc:
        print(f"spp-primary: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"spp-primary: {exc}", file=sys.stderr)
        return 1
    LOG.info("%s", how)
    if dp.config() != config:
        adopted = dp.config()
        if opts.phy or opts.tap:
            dp.close()
            print(f"spp-primary: the live stack {opts.file_prefix!r} runs with {json.dumps(adopted)}, not "
                  f"{json.dumps(config)}: start spp-primary with the stack's own --phy/--tap (or none, to take "
                  "them from the stack), or stop its processes first", file=sys.stderr)
            return 1
        opts = replace(opts, phy=list(adopted.get("phy", [])), tap=dict(adopted.get("tap", {})))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        LOG.info("signal %d: shutting down", signum)
        stop.set()

    primary = Primary(dp, phy=opts.phy, ctl_host=opts.server[0], lcores=opts.lcores, programs=opts.programs)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    ops.notify_ready()  # systemd (Type=notify): the data plane exists, secondaries can attach
    LOG.info(
        "stack %r: %d buffers, %d rings of %d, phy %s; spp-ctl at %s:%d",
        opts.file_prefix, dp.n_bufs, opts.layout.n_rings, opts.layout.ring_size,
        opts.phy or "none", *opts.server,
    )
    watcher = watch_members(primary, stop)
    try:
        status = serve(primary, *opts.server, stop)
    finally:
        stop.set()
        watcher.join(5)
        primary.close()
        primary.stop_children()
        dp.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if dp.left_to:
            LOG.warning("stack %r left in place: %s still use it (a new spp-primary with the same "
                        "--file-prefix adopts it)", opts.file_prefix, members.describe(dp.left_to))
        else:
            LOG.info("stack %r removed; bye", opts.file_prefix)
    return status


if __name__ == "__main__":
    sys.exit(main())
