"""One TCP connection from spp-ctl to one process.

A :class:`ProcessConnection` owns a reader task that consumes every byte the
process sends, so that a process closing its socket is noticed at once, even
when no command is in flight.  :meth:`ProcessConnection.request` sends one
command and waits for its reply; requests are serialised by a lock, so at most
one command is ever in flight on a connection.

Any doubt about which reply belongs to which command ends the connection: a
timeout, a cancelled request, an unsolicited reply, or bytes that are not
JSON.  The process may reconnect; a late reply can never be mistaken for the
answer to the next command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from spp.ctl.errors import BadReply, CtlError, InvalidArgument, ProcessDisconnected, ProcessTimeout
from spp.ctl.protocol import ProtocolError, ReplyDecoder
from spp.lang.wire import encode_command

LOG = logging.getLogger(__name__)

READ_CHUNK = 65536


class ProcessConnection:
    """A connected process: send commands, receive JSON replies.

    ``label`` names the process in log lines and error messages; it may be
    changed once the process is identified.  ``on_close`` is called exactly
    once, from the event loop, when the connection ends for any reason.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        label: str,
        on_close: Callable[[ProcessConnection], None] | None = None,
    ) -> None:
        self.label = label
        self.on_close = on_close
        #: What the process said of itself in the handshake (None if it did not say).
        self.pid: int | None = None
        self.instance: str | None = None
        self._reader = reader
        self._writer = writer
        self._decoder = ReplyDecoder()
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future[dict[str, Any]] | None = None
        self._closed = False
        self._closed_event = asyncio.Event()
        self._read_task: asyncio.Task[None] | None = None
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    @property
    def closed(self) -> bool:
        """True once the connection has ended; it never reopens."""
        return self._closed

    def start(self) -> None:
        """Start reading from the process.  Call once, from the event loop."""
        if self._read_task is None:
            self._read_task = asyncio.create_task(self._read_loop(), name=f"spp-ctl reader {self.peer}")

    async def wait_closed(self) -> None:
        """Return when the connection has ended."""
        await self._closed_event.wait()

    async def request(self, command: str, timeout: float) -> dict[str, Any]:
        """Send ``command`` and return the process's reply (any JSON object).

        Waits for earlier requests on this connection first.  Raises
        :class:`ProcessTimeout` if no reply comes within ``timeout`` seconds
        of sending (the connection is then closed),
        :class:`ProcessDisconnected` if the connection is or becomes closed,
        and :class:`BadReply` if the process sends something that is not a
        JSON object (the connection is then closed).  The reply is returned
        as is: :func:`spp.ctl.protocol.check_result` interprets it.
        """
        try:
            data = encode_command(command)
        except UnicodeEncodeError as exc:
            raise InvalidArgument("command", "must be ASCII") from exc
        async with self._lock:
            if self._closed:
                raise ProcessDisconnected(f"{self.label}: connection closed")
            waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            LOG.debug("%s <- %r", self.label, command)
            try:
                async with asyncio.timeout(timeout):
                    self._writer.write(data)
                    await self._writer.drain()
                    reply = await waiter
            except TimeoutError:
                self.close(f"no reply within {timeout:g} s to {command!r}")
                raise ProcessTimeout(f"{self.label}: no reply within {timeout:g} s; connection dropped") from None
            except (ConnectionError, OSError) as exc:
                self.close(f"write failed: {exc}")
                raise ProcessDisconnected(f"{self.label}: connection lost: {exc}") from exc
            except asyncio.CancelledError:
                if not waiter.done() or waiter.cancelled():
                    self.close(f"request {command!r} cancelled while in flight")
                raise
            finally:
                self._waiter = None
            LOG.debug("%s -> %r", self.label, reply)
            return reply

    def identify(self, reply: dict[str, Any]) -> None:
        """Take ``pid`` and ``instance`` from a handshake reply, when present and well-formed."""
        pid, instance = reply.get("pid"), reply.get("instance")
        if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0:
            self.pid = pid
        if isinstance(instance, str) and 0 < len(instance) <= 64:
            self.instance = instance

    async def refuse(self, message: str, timeout: float) -> None:
        """Tell the process why it is refused (``_refuse MESSAGE``), then close the connection."""
        text = message.encode("ascii", errors="replace").decode("ascii")
        with contextlib.suppress(CtlError):
            await self.request(f"_refuse {text}", timeout)
        self.close(f"refused: {message}")

    def close(self, reason: str) -> None:
        """End the connection (idempotent).

        A request in flight fails with :class:`ProcessDisconnected`.
        """
        if self._closed:
            return
        self._closed = True
        LOG.info("%s (%s): connection closed: %s", self.label, self.peer, reason)
        self._fail_waiter(ProcessDisconnected(f"{self.label}: {reason}"))
        with contextlib.suppress(Exception):
            self._writer.close()
        task = self._read_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._closed_event.set()
        if self.on_close is not None:
            self.on_close(self)

    def _fail_waiter(self, error: Exception) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    self.close("closed by the process")
                    return
                try:
                    replies = self._decoder.feed(data)
                except ProtocolError as exc:
                    self._fail_waiter(BadReply(f"{self.label}: {exc}"))
                    self.close(f"protocol error: {exc}")
                    return
                for reply in replies:
                    waiter = self._waiter
                    if waiter is None or waiter.done():
                        self.close(f"unsolicited reply {reply!r}")
                        return
                    waiter.set_result(reply)
        except (ConnectionError, OSError) as exc:
            self.close(f"read failed: {exc}")
