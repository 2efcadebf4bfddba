"""The spp-ctl core: which processes are connected, and what to ask them.

:class:`Controller` keeps one :class:`~spp.ctl.connection.ProcessConnection`
per process key and offers typed operations (``start_component``,
``attach_port``, ...).  It knows nothing of HTTP: it raises the errors of
:mod:`spp.ctl.errors` and returns plain JSON-able values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from spp.ctl import commands
from spp.ctl.commands import Direction, TableAction, TableType, VlanTag
from spp.ctl.connection import ProcessConnection
from spp.ctl.errors import BadReply, NoSuchProcess, ProcessDisconnected
from spp.ctl.protocol import check_result

LOG = logging.getLogger(__name__)

PRIMARY: Final = "primary"
"""Process kind of the primary."""

DEFAULT_TIMEOUT: Final = 5.0


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
        self._procs: dict[ProcessKey, ProcessConnection] = {}

    # -- registry ------------------------------------------------------------

    def attach(self, key: ProcessKey, conn: ProcessConnection) -> None:
        """Make ``conn`` the connection of process ``key``.

        An earlier connection with the same key is closed (a request in
        flight on it fails).  ``conn`` is forgotten again when it closes.
        """
        old = self._procs.get(key)
        conn.label = str(key)
        conn.on_close = self._forget
        self._procs[key] = conn
        if old is not None and old is not conn:
            LOG.warning("%s reconnected from %s; dropping old connection", key, conn.peer)
            old.close("replaced by a new connection")
        else:
            LOG.info("%s connected from %s", key, conn.peer)

    def _forget(self, conn: ProcessConnection) -> None:
        for key, current in list(self._procs.items()):
            if current is conn:
                del self._procs[key]
                LOG.info("%s gone", key)

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
        reply = await self._connection(key).request(command, self.timeout)
        return check_result(reply)

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
        for a vf, ``"classifier_table"``.  ``ports`` lists ``TYPE:N`` for
        every port-type list of the reply's ``info`` (``phy``, ``vhost``,
        ``ring`` first, then the other types of
        :data:`~spp.ctl.commands.PORT_TYPES`); ``components`` is ``info.core``
        verbatim.  Missing lists are empty, a missing ``master-lcore`` is
        ``None``.
        """
        reply = await self.send(kind, client_id, commands.status())
        return flatten_status(kind, client_id, reply)

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
        await self.send(kind, client_id, commands.port_add(port, direction, name, vlan))

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
        """Ask the primary to launch a secondary: ``launch ID NAME JSON``."""
        await self.send(PRIMARY, None, commands.launch(client_id, proc_name, body))


def flatten_status(kind: str, client_id: int, reply: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a secondary's wire ``status`` reply into the REST status object.

    See :meth:`Controller.status`.  Raises :class:`BadReply` if ``info`` is
    not an object or one of its lists is not a list.
    """
    info = reply.get("info")
    if not isinstance(info, dict):
        raise BadReply(f"{kind} {client_id}: status reply has no 'info' object")
    ports: list[str] = []
    first = ("phy", "vhost", "ring")
    port_types = (*first, *(t for t in commands.PORT_TYPES if t not in first))
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
    return status


def _list(info: Mapping[str, Any], name: str, kind: str, client_id: int) -> list[Any]:
    value = info.get(name, [])
    if not isinstance(value, list):
        raise BadReply(f"{kind} {client_id}: status 'info.{name}' is not a list")
    return value
