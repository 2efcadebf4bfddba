"""``spp-vf`` and ``spp-mirror``: the secondary processes.

::

    spp-vf --client-id N -s HOST:PORT [-l CORES] [--file-prefix NAME]
    spp-mirror --client-id N -s HOST:PORT [-l CORES] [--file-prefix NAME] [--copy shallow|deep]
    spp_vf -l 0,1,2 -n 4 --proc-type secondary -- --client-id 1 -s 127.0.0.1:6666   # DPDK style

In the DPDK style, arguments before ``--`` are EAL arguments: ``-l`` and
``--file-prefix`` are taken from them, the others are ignored.  The process
attaches to the data plane of ``--file-prefix`` (spp-primary must be running),
connects to spp-ctl as a TCP client at once (the data path compiles in the
background meanwhile: status says ``"state": "compiling"`` until it is ready, see
:mod:`spp.control.warmup`), answers the ``_get_client_id`` handshake, then
reads one command per ``recv`` and answers each with one JSON reply ending in
``\\n`` (:meth:`~spp.control.manager.Manager.execute`).  When the connection
drops it reconnects with backoff, keeping its state.  ``exit``, SIGTERM and
SIGINT stop it cleanly: workers stopped, buffered frames sent, ports closed.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from spp.control.manager import Manager
from spp.control.reconnect import BACKOFF_MAX, Backoff, identity, refusal
from spp.lang import parse_cores
from spp.lang.base import tokenize
from spp.lang.vf import ProcessType
from spp.lang.wire import command_text, encode_reply, receive_command, success
from spp.lang.wire import error as error_reply
from spp.mirror import MirrorAgent, handle_port_mirror_command
from spp.ops import add_log_options, add_version, notify_ready, setup_logging
from spp.ports.base import PortTable
from spp.runtime.dataplane import Dataplane

log = logging.getLogger("spp.secondary")

GET_CLIENT_ID = "_get_client_id"


@dataclass(frozen=True)
class Options:
    """Parsed command line of a secondary."""

    process: ProcessType
    client_id: int
    host: str
    port: int
    cores: list[int] | None
    file_prefix: str
    copy: str
    log_level: str
    pin: bool
    vhost_client: bool = False
    log_format: str = "text"


def _server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"invalid server {text!r}: expected HOST:PORT, e.g. 127.0.0.1:6666")
    return host, int(port)


def _cores(text: str) -> list[int]:
    try:
        return parse_cores(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _client_id(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"invalid client id {text!r}: expected a non-negative integer")
    return int(text)


def parse_args(process: ProcessType, argv: Sequence[str]) -> Options:
    """Parse both invocation styles (see the module docstring)."""
    args = list(argv)
    eal: list[str] = []
    if "--" in args:
        cut = args.index("--")
        eal, args = args[:cut], args[cut + 1 :]
    eal_parser = argparse.ArgumentParser(add_help=False, prog=f"spp-{process} (EAL arguments)")
    eal_parser.add_argument("-l", dest="lcores", type=_cores, default=None)
    eal_parser.add_argument("--file-prefix", default=None)
    eal_ns, _ignored = eal_parser.parse_known_args(eal)

    parser = argparse.ArgumentParser(prog=f"spp-{process}", description=f"spp's {process} secondary process")
    parser.add_argument("--client-id", type=_client_id, required=True, help="client id (the N of 'vf N;')")
    parser.add_argument("-s", "--server", type=_server, default=("127.0.0.1", 6666),
                        help="spp-ctl's secondary port HOST:PORT (default 127.0.0.1:6666)")
    parser.add_argument("-l", dest="lcores", type=_cores, default=None,
                        help="core list, e.g. 2-6; the first is the master lcore (default: every CPU)")
    parser.add_argument("--file-prefix", default=None, help="data plane name, as given to spp-primary (default spp)")
    if process == "mirror":
        parser.add_argument("--copy", choices=("shallow", "deep"), default="shallow",
                            help="mirror copies share the buffer (shallow, default) or copy the frame (deep)")
    parser.add_argument("--vhost-client", action="store_true",
                        help="vhost:N ports connect to a listening frontend instead of listening (SPP's option)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin worker threads to their cores")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    add_log_options(parser)
    add_version(parser)
    ns = parser.parse_args(args)
    host, port = ns.server
    return Options(
        process=process,
        client_id=ns.client_id,
        host=host,
        port=port,
        cores=ns.lcores if ns.lcores is not None else eal_ns.lcores,
        file_prefix=ns.file_prefix or eal_ns.file_prefix or "spp",
        copy=getattr(ns, "copy", "shallow"),
        log_level=ns.log_level,
        pin=not ns.no_pin,
        vhost_client=ns.vhost_client,
        log_format=ns.log_format,
    )


class Served(Protocol):
    """What :class:`SecondaryClient` serves: a :class:`Manager`, or spp-nfv's / spp-pcap's process."""

    @property
    def client_id(self) -> int: ...
    @property
    def process(self) -> str: ...
    @property
    def dp(self) -> Dataplane: ...
    def execute(self, line: str) -> dict[str, Any]: ...
    def exit(self) -> None: ...


class SecondaryClient:
    """The TCP client side of a secondary: connect, handshake, serve commands, reconnect."""

    def __init__(self, manager: Served, host: str, port: int, stop: threading.Event,
                 mirrors: MirrorAgent | None = None) -> None:
        self.manager = manager
        self.mirrors = mirrors
        self.host = host
        self.port = port
        self.stop = stop
        #: spp-ctl's message when it refused this process (another one holds its id).
        self.refused: str | None = None

    def run(self) -> int:
        """Serve until ``exit`` or ``stop`` is set (0), or until spp-ctl refuses this process (1)."""
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError as e:
                delay, loud = backoff.failed()
                (log.info if loud else log.debug)("cannot reach spp-ctl at %s:%d (%s); retrying every %.1f s at most",
                                                  self.host, self.port, e, BACKOFF_MAX)
                self.stop.wait(delay)
                continue
            log.info("connected to spp-ctl at %s:%d", self.host, self.port)
            backoff.connected()
            try:
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._serve(sock):
                    return 0
            except OSError as e:
                log.warning("connection to spp-ctl lost (%s); reconnecting", e)
            finally:
                sock.close()
            if self.refused is not None:
                return 1
            delay, _ = backoff.failed()
            self.stop.wait(delay)
        return 0

    def _serve(self, sock: socket.socket) -> bool:
        """Answer commands on ``sock``; True once ``exit`` was answered."""
        notify_ready()  # systemd (Type=notify): connected to spp-ctl
        while not self.stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.2)
            if not ready:
                continue
            data = receive_command(sock)
            if not data:
                log.warning("spp-ctl closed the connection; reconnecting")
                return False
            line = command_text(data)
            if not line:
                continue
            if tokenize(line) == ["exit"]:
                self._send(sock, success())
                log.info("exit requested by spp-ctl")
                self.manager.exit()
                return True
            message = refusal(line)
            if message is not None:
                self._send(sock, success())
                log.error("spp-ctl refused this process: %s", message)
                self.refused = message
                return False
            self._send(sock, self.answer(line))
        return False

    def answer(self, line: str) -> dict[str, Any]:
        """The reply to one command line (the handshake included)."""
        m = self.manager
        if line == GET_CLIENT_ID:
            return success(client_id=m.client_id, process_type=m.process, **identity())
        if line.startswith("port_mirror"):  # the shared mirror registry (docs/mirroring.md)
            return handle_port_mirror_command(m.dp, line.split())
        try:
            reply = m.execute(line)
        except Exception as e:  # a bug, not bad input: answer, log, keep serving
            log.error("internal error on %r: %s", line, e, exc_info=log.isEnabledFor(logging.DEBUG))
            return error_reply(f"internal error: {e}")
        result = reply.get("results", [{"result": "success"}])[0]  # spp-nfv's status reply is bare, as SPP's
        if line == "status" and result["result"] == "success" and isinstance(reply.get("info"), dict):
            errors = self.errors()
            if errors:
                reply["info"]["error"] = "; ".join(errors)
        if result["result"] != "success":
            log.info("command %r rejected: %s", line, result["error_details"]["message"])
        else:
            log.debug("command %r done", line)
        return reply

    def errors(self) -> list[str]:
        """What went wrong after the commands that caused it returned: mirrors, links, workers."""
        found = [f"port mirror {name}: {why}" for name, why in sorted((self.mirrors.errors if self.mirrors else
                                                                        {}).items())]
        ports = getattr(self.manager, "ports", None)  # a Manager's port table: a link that went away
        for port in ports.all() if ports is not None else ():
            link = port.describe().get("link")
            if link in ("down", "gone"):
                iface = port.describe().get("iface")
                found.append(f"{port.id}: link {link}" + (f" (interface {iface})" if iface else "")
                             + ": frames to it are counted link_down until it is back")
        workers = getattr(self.manager, "workers", None)  # a Manager's; spp-nfv/spp-pcap report their own
        for core, worker in sorted(workers().items() if workers is not None else ()):
            if worker.error is not None:
                found.append(f"core {core}: worker stopped: {worker.error}")
        return found

    @staticmethod
    def _send(sock: socket.socket, reply: dict[str, Any]) -> None:
        sock.sendall(encode_reply(reply))


def run(process: ProcessType, argv: Sequence[str] | None = None) -> int:
    """Run a secondary until ``exit`` or a signal; return the exit status."""
    opts = parse_args(process, sys.argv[1:] if argv is None else argv)
    setup_logging(opts.log_level, opts.log_format,
                  text_format=f"%(asctime)s %(levelname)s spp-{process}[{opts.client_id}]: %(message)s",
                  static={"process": f"{process}:{opts.client_id}"})
    if opts.vhost_client:
        from spp.ports.vhost import set_client_default

        set_client_default(True)
    try:
        dp = Dataplane.attach(opts.file_prefix)
    except (OSError, RuntimeError, ValueError) as e:
        log.error("cannot attach to the data plane %r: %s", opts.file_prefix, e)
        return 1
    try:
        manager = Manager(dp, process=process, client_id=opts.client_id, cores=opts.cores,
                          options={"copy": opts.copy}, pin=opts.pin, wait_compiled=False)
    except ValueError as e:
        log.error("%s", e)
        dp.close()
        return 1
    log.info("spp-%s %d on cores %s (master lcore %d), data plane %r", process, opts.client_id,
             ",".join(map(str, manager.cores)), manager.master_lcore, opts.file_prefix)
    absent = [c for c in manager.cores if c not in os.sched_getaffinity(0)]
    if absent:
        log.warning("-l names cores this host does not offer (%s; available: %s): their workers run unpinned",
                    ",".join(map(str, absent)), ",".join(map(str, sorted(os.sched_getaffinity(0)))))
    return serve_until_stopped(dp, manager, opts.host, opts.port, manager.ports, f"spp-{process} {opts.client_id}")


def serve_until_stopped(dp: Dataplane, served: Served, host: str, port: int, ports: PortTable | None,
                        label: str) -> int:
    """Answer spp-ctl for ``served`` until ``exit``, SIGTERM or SIGINT, then close it and ``dp``.

    ``ports``: the process's port table, which shared port mirrors attach to (None: none).
    Returns the exit status: 0, or 1 when spp-ctl refuses the process (its client id is taken).
    """
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s received: exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    mirrors = MirrorAgent(dp, ports) if ports is not None else None  # shared port mirrors reach our ports
    if mirrors is not None:
        mirrors.start()
    try:
        status = SecondaryClient(served, host, port, stop, mirrors).run()
    finally:
        if mirrors is not None:
            mirrors.close()
        served.exit()
        dp.close()
    log.info("%s stopped", label)
    return status


def main_vf(argv: Sequence[str] | None = None) -> int:
    """Console script ``spp-vf``."""
    return run("vf", argv)


def main_mirror(argv: Sequence[str] | None = None) -> int:
    """Console script ``spp-mirror``."""
    return run("mirror", argv)


if __name__ == "__main__":
    sys.exit(main_vf())
