"""The spp-ctl core: which processes are connected, and what to ask them.

:class:`Controller` keeps one :class:`~spp.ctl.connection.ProcessConnection`
per process key and offers typed operations (``start_component``,
``attach_port``, ...).  It knows nothing of HTTP: it raises the errors of
:mod:`spp.ctl.errors` and returns plain JSON-able values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from spp.ctl import commands
from spp.ctl.commands import Direction, TableAction, TableType, VlanTag
from spp.ctl.connection import ProcessConnection
from spp.ctl.errors import BadReply, CommandError, CtlError, NoSuchProcess, ProcessDisconnected
from spp.ctl.protocol import check_result
from spp.runtime.dataplane import PORT_TYPES

LOG = logging.getLogger(__name__)

PRIMARY: Final = "primary"
"""Process kind of the primary."""

DEFAULT_TIMEOUT: Final = 5.0
PROBE_TIMEOUT: Final = 2.0
LAUNCH_WAIT: Final = 30.0
LAUNCH_POLL: Final = 0.1
GET_CLIENT_ID: Final = "_get_client_id"
"""The handshake command: secondaries must answer it, a primary may (SPP's does not)."""


@dataclass(frozen=True)
class ProcessKey:
    """Identity of a connected process.

    Secondaries are keyed by ``(kind, client_id)``: ``vf 1`` and
    ``mirror 1`` are different processes.  The primary is
    ``ProcessKey("primary", None)``.
    """

    kind: str
    client_id: int | None = None

    def __str__(self) -> str:
        return self.kind if self.client_id is None else f"{self.kind} {self.client_id}"

    def sort_key(self) -> tuple[int, str, int]:
        """Primary first, then by kind, then by client id."""
        return (0 if self.kind == PRIMARY else 1, self.kind, self.client_id or 0)


PRIMARY_KEY: Final = ProcessKey(PRIMARY)


class Controller:
    """Registry of connected processes and the operations on them.

    ``timeout`` bounds the wait for each reply, in seconds.  All methods must
    be called from the event loop that owns the connections.
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        #: How long :meth:`launch` waits for the child to register or exit.
        self.launch_wait = LAUNCH_WAIT
        self._procs: dict[ProcessKey, ProcessConnection] = {}
        #: The ``error`` of each connected process's last status reply (what failed after a command returned).
        self._errors: dict[ProcessKey, str] = {}
        self._registering = asyncio.Lock()
        self._launched: set[int] = set()

    # -- registry ------------------------------------------------------------

    def attach(self, key: ProcessKey, conn: ProcessConnection) -> None:
        """Make ``conn`` the connection of process ``key`` (no identity check: see :meth:`register`).

        An earlier connection with the same key is closed (a request in
        flight on it fails).  ``conn`` is forgotten again when it closes.
        """
        old = self._procs.get(key)
        conn.label = str(key)
        conn.on_close = self._forget
        self._procs[key] = conn
        if old is not None and old is not conn:
            LOG.info("%s reconnected from %s; dropping its old connection", key, conn.peer)
            old.close("replaced by a new connection of the same process")
        else:
            LOG.info("%s connected from %s%s", key, conn.peer, f" (pid {conn.pid})" if conn.pid else "")

    async def register(self, key: ProcessKey, conn: ProcessConnection) -> str | None:
        """Register ``conn`` as ``key`` unless another live process holds the id.

        Client ids are unique across secondary types (``vf 4`` and ``mirror 4``
        cannot coexist), and there is one primary.  A holder that announced the
        same ``instance`` token as ``conn`` is the same process reconnecting: it is
        replaced.  Any other holder is asked ``_get_client_id``; if it answers, it is
        alive and the newcomer is refused: the message saying why is returned
        (None when ``conn`` was registered).
        """
        async with self._registering:
            holder_key, holder = self._holder(key)
            if holder is not None and not holder.closed:
                same = conn.instance is not None and conn.instance == holder.instance and holder_key == key
                if not same and await self._answers(holder):
                    pid = f"pid {holder.pid}, " if holder.pid else ""
                    if key.kind == PRIMARY:
                        return (f"a primary is already connected to this spp-ctl ({pid}from {holder.peer}); "
                                "stop it first, or connect this one to another spp-ctl")
                    return (f"client id {key.client_id} is already used by {holder_key} ({pid}from {holder.peer}); "
                            "client ids are unique across process types: stop that process first, "
                            "or pick another --client-id")
            self.attach(key, conn)
            return None

    def _holder(self, key: ProcessKey) -> tuple[ProcessKey, ProcessConnection | None]:
        if key.kind == PRIMARY:
            return key, self._procs.get(key)
        for other, conn in self._procs.items():
            if other.kind != PRIMARY and other.client_id == key.client_id:
                return other, conn
        return key, None

    async def _answers(self, conn: ProcessConnection) -> bool:
        """True if ``conn``'s process still answers (a dead one is dropped by the attempt)."""
        try:
            await conn.request(GET_CLIENT_ID, min(self.timeout, PROBE_TIMEOUT))
        except CtlError:
            return not conn.closed
        return True

    def _forget(self, conn: ProcessConnection) -> None:
        for key, current in list(self._procs.items()):
            if current is conn:
                del self._procs[key]
                self._errors.pop(key, None)
                LOG.info("%s gone", key)
                if key == PRIMARY_KEY:
                    self._launched.clear()  # its children are gone with it

    def processes(self) -> list[ProcessKey]:
        """Keys of the connected processes: the primary first, then by kind and id."""
        return sorted(self._procs, key=ProcessKey.sort_key)

    def close(self) -> None:
        """Close every connection."""
        for conn in list(self._procs.values()):
            conn.close("spp-ctl shutting down")

    def _connection(self, key: ProcessKey) -> ProcessConnection:
        conn = self._procs.get(key)
        if conn is None or conn.closed:
            raise NoSuchProcess(f"no such process: {key}")
        return conn

    # -- generic -------------------------------------------------------------

    async def send(self, kind: str, client_id: int | None, command: str) -> dict[str, Any]:
        """Send ``command`` to process ``(kind, client_id)``; return its reply.

        Raises :class:`NoSuchProcess` if it is not connected,
        :class:`~spp.ctl.errors.ProcessUnavailable` on timeout or disconnect,
        :class:`~spp.ctl.errors.CommandError` if it answers with an error and
        :class:`BadReply` if the reply is not understood.
        """
        key = ProcessKey(kind, client_id)
        reply = check_result(await self._connection(key).request(command, self.timeout))
        if command == commands.status() and isinstance(reply.get("info"), dict):  # whoever asked: REST, metrics, UI
            self.note_error(key, reply["info"].get("error"))
        return reply

    async def _exit(self, key: ProcessKey) -> None:
        conn = self._connection(key)
        try:
            check_result(await conn.request(commands.exit_process(), self.timeout))
        except ProcessDisconnected:
            LOG.info("%s closed its connection on exit", key)
        conn.close("exited")

    # -- secondaries ---------------------------------------------------------

    async def status(self, kind: str, client_id: int) -> dict[str, Any]:
        """Status of a secondary, flattened for REST.

        Returns ``{"client-id", "ports", "master-lcore", "components"}`` and,
        for a vf, ``"classifier_table"``; ``"error"`` when the process reports one.  ``ports`` lists ``TYPE:N`` for
        every port-type list of the reply's ``info`` (``phy``, ``vhost``,
        ``ring`` first, then the other types of
        :data:`~spp.runtime.dataplane.PORT_TYPES`); ``components`` is ``info.core``
        verbatim.  Missing lists are empty, a missing ``master-lcore`` is
        ``None``.  spp's processes add ``state``: ``compiling`` until their data
        path is ready (commands are taken meanwhile), then ``ready``.
        """
        reply = await self.send(kind, client_id, commands.status())
        return flatten_status(kind, client_id, reply)

    def note_error(self, key: ProcessKey, error: object) -> None:
        """Remember (or clear) the error a process's status reported, for ``GET /v1/processes``."""
        if error:
            self._errors[key] = str(error)
        else:
            self._errors.pop(key, None)

    def error_of(self, key: ProcessKey) -> str | None:
        """The error of ``key``'s last status reply, if it had one and the process is still connected."""
        return self._errors.get(key) if key in self._procs else None

    async def exit_process(self, kind: str, client_id: int) -> None:
        """Ask a secondary to exit, and forget it.

        A process that closes its connection instead of replying has exited.
        """
        await self._exit(ProcessKey(kind, client_id))

    async def start_component(self, kind: str, client_id: int, name: str, core: int, ctype: str) -> None:
        """``component start NAME CORE TYPE``."""
        await self.send(kind, client_id, commands.component_start(kind, name, core, ctype))

    async def stop_component(self, kind: str, client_id: int, name: str) -> None:
        """``component stop NAME``."""
        await self.send(kind, client_id, commands.component_stop(name))

    async def attach_port(
        self,
        kind: str,
        client_id: int,
        *,
        name: str,
        port: str,
        direction: Direction,
        vlan: VlanTag | None = None,
    ) -> None:
        """``port add PORT DIR NAME [vlan option]``."""
        await self.send(kind, client_id, commands.port_add(port, direction, name, vlan, kind))

    async def detach_port(self, kind: str, client_id: int, *, name: str, port: str, direction: Direction) -> None:
        """``port del PORT DIR NAME``."""
        await self.send(kind, client_id, commands.port_del(port, direction, name))

    async def classifier_table(
        self,
        client_id: int,
        *,
        action: TableAction,
        table_type: TableType,
        mac_address: str,
        port: str,
        vlan: int | str | None = None,
    ) -> None:
        """``classifier_table ...`` to spp_vf ``client_id``."""
        command = commands.classifier_table(action, table_type, mac_address, port, vlan)
        await self.send("vf", client_id, command)

    # -- primary -------------------------------------------------------------

    async def primary_status(self) -> dict[str, Any]:
        """The primary's ``info`` object, as the primary sent it."""
        reply = await self.send(PRIMARY, None, commands.status())
        info = reply.get("info")
        if not isinstance(info, dict):
            raise BadReply("primary: status reply has no 'info' object")
        return info

    async def failed_launches(self) -> list[dict[str, Any]]:
        """Launched secondaries that exited with an error and are not connected (see ``GET /v1/processes``).

        Only ids launched through this spp-ctl count (the primary is asked only then);
        empty when no primary is connected or it does not answer within a second.
        """
        if PRIMARY_KEY not in self._procs or not self._launched:
            return []
        try:
            reply = await self._connection(PRIMARY_KEY).request(commands.status(), min(self.timeout, 1.0))
            children = check_result(reply).get("info", {}).get("processes") or []
        except (CtlError, AttributeError):
            return []
        latest: dict[int, dict[str, Any]] = {}
        for child in children:
            if isinstance(child, dict) and isinstance(child.get("client_id"), int):
                latest[child["client_id"]] = child
        connected = {k.client_id for k in self._procs if k.kind != PRIMARY}
        return [{"type": str(c.get("proc_name")), "client-id": cid, "error": str(c["error"])}
                for cid, c in sorted(latest.items())
                if c.get("error") and cid not in connected and cid in self._launched]

    async def primary_clear(self) -> None:
        """Reset the primary's counters (``clear``)."""
        await self.send(PRIMARY, None, commands.clear())

    async def primary_port(self, action: TableAction, port: str) -> None:
        """``port add PORT`` / ``port del PORT`` to the primary."""
        await self.send(PRIMARY, None, commands.primary_port(action, port))

    async def primary_exit(self) -> None:
        """Ask the primary to exit, and forget it."""
        await self._exit(PRIMARY_KEY)

    async def launch(self, client_id: int, proc_name: str, body: Mapping[str, Any]) -> None:
        """Ask the primary to launch a secondary: ``launch ID NAME JSON``; wait for the outcome.

        Returns once the child registers with spp-ctl; raises :class:`CommandError`
        with the child's own message if it exits first.  A primary whose ``status``
        does not list its children (SPP's) is not waited for, and neither is a child
        still starting after :attr:`launch_wait` seconds (a first run compiles).
        """
        await self.send(PRIMARY, None, commands.launch(client_id, proc_name, body))
        self._launched.add(client_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.launch_wait
        while loop.time() < deadline:
            if any(k.kind != PRIMARY and k.client_id == client_id for k in self._procs):
                return
            children = (await self.primary_status()).get("processes")
            mine = [c for c in children or [] if isinstance(c, dict) and c.get("client_id") == client_id]
            if not mine:
                return
            if mine[-1].get("alive") is False:
                error = mine[-1].get("error") or f"exited with status {mine[-1].get('returncode')}"
                raise CommandError(f"launch {proc_name} {client_id}: {error}")
            await asyncio.sleep(LAUNCH_POLL)
        LOG.info("launch %s %d: not registered after %g s; still starting", proc_name, client_id, self.launch_wait)


def flatten_status(kind: str, client_id: int, reply: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a secondary's wire ``status`` reply into the REST status object.

    See :meth:`Controller.status`.  Raises :class:`BadReply` if ``info`` is
    not an object or one of its lists is not a list.
    """
    info = reply.get("info")
    if not isinstance(info, dict):
        raise BadReply(f"{kind} {client_id}: status reply has no 'info' object")
    ports: list[str] = []
    first = ("phy", "vhost", "ring", "pcap", "nullpmd", "tap")
    port_types = (*first, *(t for t in PORT_TYPES if t not in first))
    for port_type in port_types:
        for item in _list(info, port_type, kind, client_id):
            text = str(item)
            ports.append(text if ":" in text else f"{port_type}:{text}")
    status: dict[str, Any] = {
        "client-id": info.get("client-id", client_id),
        "ports": ports,
        "master-lcore": info.get("master-lcore"),
        "components": _list(info, "core", kind, client_id),
    }
    if kind == "vf":
        status["classifier_table"] = _list(info, "classifier_table", kind, client_id)
    if "workers" in info:  # spp's addition: per worker, compiled data path or Python (and why)
        status["workers"] = _list(info, "workers", kind, client_id)
    if isinstance(info.get("state"), str):  # spp's addition: "compiling" until the data path is ready
        status["state"] = info["state"]
    if info.get("error"):  # what failed after its command returned (a port mirror, a worker)
        status["error"] = str(info["error"])
    return status


def _list(info: Mapping[str, Any], name: str, kind: str, client_id: int) -> list[Any]:
    value = info.get(name, [])
    if not isinstance(value, list):
        raise BadReply(f"{kind} {client_id}: status 'info.{name}' is not a list")
    return value
