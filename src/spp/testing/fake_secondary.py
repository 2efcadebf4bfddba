"""Fake SPP processes for tests: TCP clients that talk to a real spp-ctl.

:class:`FakeSecondary` connects to spp-ctl's secondary port, answers the
``_get_client_id`` handshake, records every command it receives and answers
it (success by default, or whatever was scripted with :meth:`FakeProcess.on`).
:class:`FakePrimary` does the same on the primary port, without handshake.

Each fake runs one daemon thread per connection and uses blocking sockets, so
it is independent of the event loop of the code under test.  Example::

    with FakeSecondary("127.0.0.1", sec_port, client_id=1, process_type="vf") as vf:
        vf.on("component start", error_reply("Invalid value (core)"))
        ...  # drive spp-ctl over REST
        vf.wait_for_commands(1)
        assert vf.commands == ["component start fwd1 12 forward"]
        assert vf.overlaps == 0  # never two commands in flight

A reply may be a ``dict`` (sent as JSON followed by :attr:`FakeProcess.terminator`),
raw ``bytes`` (sent as is), ``None`` (no reply at all: the fake "hangs" on
that command) or a callable taking the command and returning one of those.
"""

from __future__ import annotations

import contextlib
import copy
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from spp.lang.wire import error as error_reply
from spp.lang.wire import success

Reply = dict[str, Any] | bytes | None
"""What a fake answers: a JSON object, raw bytes, or None for no answer."""

Responder = Callable[[str], Reply]

SUCCESS: dict[str, Any] = {"results": [{"result": "success"}]}


def vf_status_info(client_id: int) -> dict[str, Any]:
    """A spp_vf ``status`` info object in the shape of SPEC section 3."""
    no_vlan = {"operation": "none", "id": 0, "pcp": 0}
    return {
        "client-id": client_id,
        "phy": ["0", "1"],
        "vhost": [],
        "ring": ["0", "1"],
        "master-lcore": 2,
        "core": [
            {
                "core": 3,
                "name": "cls",
                "type": "classifier",
                "rx_port": [{"port": "phy:0", "vlan": dict(no_vlan)}],
                "tx_port": [
                    {"port": "ring:0", "vlan": dict(no_vlan)},
                    {"port": "ring:1", "vlan": {"operation": "add", "id": 101, "pcp": 3}},
                ],
            },
            {"core": 4, "type": "unuse"},
        ],
        "classifier_table": [
            {"type": "mac", "value": "52:54:00:12:34:56", "port": "ring:0"},
            {"type": "vlan", "value": "101/default", "port": "ring:1"},
        ],
    }


def mirror_status_info(client_id: int) -> dict[str, Any]:
    """A spp_mirror ``status`` info object (spp_vf's without ``classifier_table``)."""
    no_vlan = {"operation": "none", "id": 0, "pcp": 0}
    return {
        "client-id": client_id,
        "phy": [],
        "vhost": [],
        "ring": ["0", "4", "5"],
        "master-lcore": 1,
        "core": [
            {
                "core": 2,
                "name": "mir",
                "type": "mirror",
                "rx_port": [{"port": "ring:0", "vlan": dict(no_vlan)}],
                "tx_port": [
                    {"port": "ring:4", "vlan": dict(no_vlan)},
                    {"port": "ring:5", "vlan": dict(no_vlan)},
                ],
            }
        ],
    }


def primary_status_info() -> dict[str, Any]:
    """A plausible primary ``status`` info object (its real shape belongs to spp_primary)."""
    counters = {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0, "drops": {}}
    return {
        "lcores": [0],
        "ports": [{"port": "phy:0", "stats": dict(counters)}],
        "rings": ["ring:0"],
        "pool": {"size": 8192, "in_use": 0},
    }


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005) -> None:
    """Poll ``condition`` until it is true; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class FakeProcess:
    """A fake SPP process connected to spp-ctl; see the module docstring.

    ``reply_delay`` seconds pass between receiving a command and answering
    it; during that time the fake watches for a second command arriving
    before the first is answered, and counts it in :attr:`overlaps`.
    ``split_replies`` sends each JSON reply in three TCP segments.
    ``terminator`` follows every JSON reply (``b"\\n"``, ``b"\\0"`` or ``b""``).
    """

    handshake = False

    def __init__(
        self,
        host: str,
        port: int,
        *,
        reply_delay: float = 0.0,
        split_replies: bool = False,
        terminator: bytes = b"\n",
    ) -> None:
        self.host = host
        self.port = port
        self.reply_delay = reply_delay
        self.split_replies = split_replies
        self.terminator = terminator
        self.status_info: dict[str, Any] = {}
        self.overlaps = 0
        self.handshakes = 0
        self._commands: list[str] = []
        self._scripts: list[tuple[str, Reply | Responder]] = []
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._connected = False

    # -- lifecycle -------------------------------------------------------------

    def connect(self, timeout: float = 5.0) -> Self:
        """Connect to spp-ctl and start answering.

        For a secondary, return once the handshake has been answered (spp-ctl
        registers the process right after; poll ``/v1/processes`` to be sure).
        """
        if self._connected:
            raise RuntimeError("already connected")
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)
        with self._cond:
            self._sock = sock
            self._connected = True
            handshakes = self.handshakes
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True, name=f"fake {self}")
        self._thread.start()
        if self.handshake:
            with self._cond:
                if not self._cond.wait_for(lambda: self.handshakes > handshakes or not self._connected, timeout):
                    raise TimeoutError(f"{self}: no handshake from spp-ctl within {timeout} s")
        return self

    def disconnect(self) -> None:
        """Close the connection (as a crashing process would) and stop the thread."""
        with self._cond:
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    close = disconnect

    def __enter__(self) -> Self:
        if not self._connected:
            self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()

    @property
    def connected(self) -> bool:
        """False once either side closed the connection."""
        with self._cond:
            return self._connected

    def wait_disconnected(self, timeout: float = 5.0) -> None:
        """Wait until the connection is closed (e.g. dropped by spp-ctl)."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._connected, timeout):
                raise TimeoutError(f"{self}: still connected after {timeout} s")

    # -- scripting and observation ------------------------------------------------

    def on(self, prefix: str, reply: Reply | Responder) -> None:
        """Answer commands starting with ``prefix`` with ``reply`` (latest script wins)."""
        with self._cond:
            self._scripts.insert(0, (prefix, reply))

    def hang_on(self, prefix: str) -> None:
        """Never answer commands starting with ``prefix``."""
        self.on(prefix, None)

    def reset(self) -> None:
        """Forget recorded commands and scripts."""
        with self._cond:
            self._commands.clear()
            self._scripts.clear()
            self.overlaps = 0

    @property
    def commands(self) -> list[str]:
        """Commands received so far (handshakes excluded), oldest first."""
        with self._cond:
            return list(self._commands)

    def wait_for_commands(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until at least ``count`` commands were received; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._commands) >= count, timeout):
                raise TimeoutError(f"{self}: {len(self._commands)} of {count} commands after {timeout} s")
            return list(self._commands)

    def default_reply(self, command: str) -> Reply:
        """The answer when no script matches: ``status`` gets :attr:`status_info`."""
        if command == "status":
            return success(info=copy.deepcopy(self.status_info))
        return dict(SUCCESS)

    # -- the connection thread -------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                try:
                    data = sock.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                command = data.decode("ascii", errors="replace")
                reply = self._answer(command)
                if self.reply_delay:
                    time.sleep(self.reply_delay)
                if _has_pending_data(sock):
                    with self._cond:
                        self.overlaps += 1
                if reply is not None and not self._send(sock, reply):
                    break
                if command == "_get_client_id":
                    with self._cond:
                        self.handshakes += 1
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._connected = False
                if self._sock is sock:
                    self._sock = None
                self._cond.notify_all()
            sock.close()

    def _answer(self, command: str) -> Reply:
        if command == "_get_client_id":
            return self.handshake_reply()
        with self._cond:
            self._commands.append(command)
            self._cond.notify_all()
            scripts = list(self._scripts)
        for prefix, script in scripts:
            if command.startswith(prefix):
                return script(command) if callable(script) else script
        return self.default_reply(command)

    def handshake_reply(self) -> Reply:
        """The answer to ``_get_client_id`` (a primary never gets asked)."""
        return error_reply("unknown command")

    def _send(self, sock: socket.socket, reply: dict[str, Any] | bytes) -> bool:
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode() + self.terminator
        try:
            if self.split_replies and len(data) >= 3:
                third = len(data) // 3
                for chunk in (data[:third], data[third : 2 * third], data[2 * third :]):
                    sock.sendall(chunk)
                    time.sleep(0.002)
            else:
                sock.sendall(data)
        except OSError:
            return False
        return True


def _has_pending_data(sock: socket.socket) -> bool:
    """True if bytes (not just an end of stream) wait to be read."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):  # closed meanwhile
        return False


class FakeSecondary(FakeProcess):
    """A fake spp_vf / spp_mirror (or any ``process_type``) with ``client_id``.

    ``status_info`` defaults to :func:`vf_status_info` or
    :func:`mirror_status_info`; set :attr:`handshake_override` to answer the
    handshake with something else (a reply, or a responder).
    """

    handshake = True

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        process_type: str = "vf",
        **options: Any,
    ) -> None:
        super().__init__(host, port, **options)
        self.client_id = client_id
        self.process_type = process_type
        self.handshake_override: Reply | Responder = self.default_handshake
        if process_type == "vf":
            self.status_info = vf_status_info(client_id)
        elif process_type == "mirror":
            self.status_info = mirror_status_info(client_id)
        else:
            self.status_info = {"client-id": client_id}

    def handshake_reply(self) -> Reply:
        """``{"results":[success],"client_id":N,"process_type":T}`` unless overridden."""
        override = self.handshake_override
        return override("_get_client_id") if callable(override) else override

    def default_handshake(self, command: str) -> Reply:
        """``{"results":[success],"client_id":N,"process_type":T}``."""
        return success(client_id=self.client_id, process_type=self.process_type)

    def __str__(self) -> str:
        return f"{self.process_type} {self.client_id}"


class FakePrimary(FakeProcess):
    """A fake spp_primary: no handshake, ``status`` answers :func:`primary_status_info`."""

    def __init__(self, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.status_info = primary_status_info()

    def __str__(self) -> str:
        return "primary"
