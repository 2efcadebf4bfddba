"""The TCP side of spp-ctl, and the service that runs all three listeners.

Primary and secondaries are TCP *clients* of spp-ctl.  On the secondary port,
spp-ctl first sends ``_get_client_id`` and expects
``{"results":[{"result":"success"}],"client_id":N,"process_type":"vf"}``; the
process is then known as ``(process_type, client_id)``.  On the primary port
spp-ctl asks the same; our primary answers with ``process_type`` ``primary``, SPP's
with an error (accepted).  Both may add ``pid`` and ``instance``: a new connection
of the same instance replaces the old one, while a *different* process claiming a
live process's id (client ids are unique across types; one primary) is sent
``_refuse MESSAGE`` and dropped (:meth:`Controller.register`).

:class:`CtlService` binds the three sockets, runs the two TCP listeners and
the REST server (uvicorn) on one event loop, and stops them all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
from dataclasses import dataclass
from typing import Any, Final

import uvicorn

from spp.ctl.api import create_app
from spp.ctl.connection import ProcessConnection
from spp.ctl.controller import GET_CLIENT_ID, PRIMARY, PRIMARY_KEY, Controller, ProcessKey
from spp.ctl.errors import CtlError
from spp.ctl.protocol import check_result

LOG = logging.getLogger(__name__)

_KIND_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class HandshakeError(Exception):
    """A secondary's answer to ``_get_client_id`` is unusable."""


def parse_client_id(reply: dict[str, Any]) -> ProcessKey:
    """Return the key a secondary announces in its ``_get_client_id`` reply.

    ``client_id`` must be a non-negative integer; ``process_type`` a short
    lower-case word (``vf``, ``mirror``, ``nfv``, ``pcap``, ...) other than
    ``primary``.  Raises :class:`HandshakeError` otherwise.
    """
    try:
        check_result(reply)
    except CtlError as exc:
        raise HandshakeError(f"error reply: {exc}") from exc
    client_id = reply.get("client_id")
    kind = reply.get("process_type")
    if isinstance(client_id, bool) or not isinstance(client_id, int) or client_id < 0:
        raise HandshakeError(f"bad client_id {client_id!r}")
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind) or kind == PRIMARY:
        raise HandshakeError(f"bad process_type {kind!r}")
    return ProcessKey(kind, client_id)


class TcpListeners:
    """Accepts the primary and the secondaries and registers them."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._servers: list[asyncio.Server] = []

    async def start(self, primary_sock: socket.socket, secondary_sock: socket.socket) -> None:
        """Start accepting on two already bound and listening sockets."""
        self._servers.append(await asyncio.start_server(self._handle_primary, sock=primary_sock))
        self._servers.append(await asyncio.start_server(self._handle_secondary, sock=secondary_sock))

    async def close(self) -> None:
        """Stop accepting and close every process connection."""
        for server in self._servers:
            server.close()
        self.controller.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    async def _handle_primary(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ProcessConnection(reader, writer, label="primary")
        conn.label = f"primary at {conn.peer}"
        conn.start()
        try:  # our primary says who it is; SPP's answers with an error, which is fine
            conn.identify(await conn.request(GET_CLIENT_ID, self.controller.timeout))
        except CtlError as exc:
            LOG.warning("%s: no answer to %s: %s", conn.label, GET_CLIENT_ID, exc)
            conn.close("handshake failed")
            return
        await self._register(PRIMARY_KEY, conn)

    async def _handle_secondary(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ProcessConnection(reader, writer, label="secondary")
        conn.label = f"secondary at {conn.peer}"
        conn.start()
        try:
            reply = await conn.request(GET_CLIENT_ID, self.controller.timeout)
            key = parse_client_id(reply)
        except (CtlError, HandshakeError) as exc:
            LOG.warning("%s: handshake failed: %s", conn.label, exc)
            conn.close("handshake failed")
            return
        conn.identify(reply)
        await self._register(key, conn)

    async def _register(self, key: ProcessKey, conn: ProcessConnection) -> None:
        refused = await self.controller.register(key, conn)
        if refused is not None:
            LOG.warning("%s from %s refused: %s", key, conn.peer, refused)
            await conn.refuse(refused, self.controller.timeout)
            return
        await conn.wait_closed()


@dataclass(frozen=True)
class CtlConfig:
    """Settings of one spp-ctl instance (see ``spp-ctl --help``).

    A port of 0 binds any free port; :attr:`CtlService.ports` tells which.
    """

    bind_addr: str = "localhost"
    primary_port: int = 5555
    secondary_port: int = 6666
    api_port: int = 7777
    token: str | None = None
    timeout: float = 5.0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (first address ``host`` resolves to)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, sock_type, proto, _, address = infos[0]
    # proto must be IPPROTO_TCP (not 0): asyncio sets TCP_NODELAY on accepted
    # sockets only then, and Nagle's algorithm would add 40 ms to replies.
    sock = socket.socket(family, sock_type, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class CtlService:
    """spp-ctl as a whole: primary, secondary and REST listeners on one loop.

    Construction binds the three sockets (raising ``OSError`` if a port is
    taken), so that :attr:`ports` is known before :meth:`run`.  :meth:`run`
    serves until :meth:`stop` is called (from any thread) or, in the main
    thread, until SIGINT/SIGTERM.  :attr:`ready` is set once all three
    listeners accept connections.
    """

    def __init__(self, config: CtlConfig) -> None:
        self.config = config
        self.controller = Controller(timeout=config.timeout)
        self.ready = threading.Event()
        socks: list[socket.socket] = []
        roles = ("primary port (-p)", "secondary port (-s)", "REST port (-a)")
        ports = (config.primary_port, config.secondary_port, config.api_port)
        try:
            for role, port in zip(roles, ports, strict=True):
                try:
                    socks.append(bind(config.bind_addr, port))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {config.bind_addr}:{port}, the {role}: "
                                  f"{exc.strerror}") from exc
        except OSError:
            for sock in socks:
                sock.close()
            raise
        self._primary_sock, self._secondary_sock, self._api_sock = socks
        self.app = create_app(self.controller, token=config.token)
        self._uvicorn = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )

    @property
    def ports(self) -> tuple[int, int, int]:
        """The bound ``(primary, secondary, api)`` ports."""
        return (
            self._primary_sock.getsockname()[1],
            self._secondary_sock.getsockname()[1],
            self._api_sock.getsockname()[1],
        )

    def stop(self) -> None:
        """Ask :meth:`run` to return soon; safe from any thread."""
        self._uvicorn.should_exit = True

    async def run(self) -> None:
        """Serve until stopped, then close every socket and connection."""
        listeners = TcpListeners(self.controller)
        try:
            await listeners.start(self._primary_sock, self._secondary_sock)
            watcher = asyncio.create_task(self._signal_ready())
            primary, secondary, api = self.ports
            LOG.info(
                "spp-ctl on %s: primary port %d, secondary port %d, REST port %d",
                self.config.bind_addr,
                primary,
                secondary,
                api,
            )
            LOG.info("topology page: http://%s:%d/ui%s", _url_host(self.config.bind_addr), api,
                     "?token=TOKEN" if self.config.token is not None else "")
            try:
                await self._uvicorn.serve(sockets=[self._api_sock])
            finally:
                watcher.cancel()
        finally:
            await listeners.close()
            for sock in (self._primary_sock, self._secondary_sock, self._api_sock):
                sock.close()
            LOG.info("spp-ctl stopped")

    async def _signal_ready(self) -> None:
        while not self._uvicorn.started:
            await asyncio.sleep(0.005)
        self.ready.set()


def _url_host(addr: str) -> str:
    """``addr`` as the host part of a URL (IPv6 in brackets)."""
    return f"[{addr}]" if ":" in addr and not addr.startswith("[") else addr
