"""The wire between spp-ctl and every process: what one command and one reply are on the socket.

A command goes out as plain ASCII with no terminator, one at a time (spp-ctl waits
for the reply before it sends the next).  A process reads one command with
:func:`receive_command` (one read, continued while reads come back exactly full, as
SPP's processes do, so a long ``launch`` body arrives whole) and decodes it with
:func:`command_text`.  A reply is one JSON object followed by ``\n`` (a NUL is
tolerated too), written by :func:`encode_reply` and built by :func:`success` or
:func:`error`; it may arrive split over several TCP segments, and spp-ctl's
:class:`ReplyDecoder` accumulates bytes and yields complete objects, resuming its scan
where the previous chunk stopped (linear in the reply's size).
"""

from __future__ import annotations

import json
import socket
from typing import Any, Final

#: Bytes one read of a command asks for.
RECV_SIZE: Final = 4096
#: How long a process waits for the rest of a command whose first read came back full (s).
CONTINUATION_TIMEOUT: Final = 0.05


# -- replies ---------------------------------------------------------------------------


def success(**extra: Any) -> dict[str, Any]:
    """SPP's success reply, with extra top-level keys (``info``, ``client_id``...)."""
    return {"results": [{"result": "success"}], **extra}


def error(message: str) -> dict[str, Any]:
    """SPP's error reply carrying ``message``."""
    return {"results": [{"result": "error", "error_details": {"message": message}}]}


def encode_reply(reply: dict[str, Any]) -> bytes:
    """One reply on the wire: compact JSON and ``\n``."""
    return (json.dumps(reply, separators=(",", ":")) + "\n").encode()


# -- commands --------------------------------------------------------------------------


def encode_command(text: str) -> bytes:
    """One command on the wire: its ASCII text, no terminator."""
    return text.encode("ascii")


def command_text(data: bytes) -> str:
    """The command in ``data`` as text (NULs, line ends and blanks around it dropped)."""
    return data.decode("ascii", errors="replace").strip("\0\r\n\t ")


def receive_command(sock: socket.socket) -> bytes:
    """One command: one read, continued while reads come back exactly full (SPP's reader).

    Returns ``b""`` when the peer closed the connection.  The socket's timeout is
    restored afterwards.
    """
    data = sock.recv(RECV_SIZE)
    chunk = data
    timeout = sock.gettimeout()
    try:
        while len(chunk) == RECV_SIZE:
            sock.settimeout(CONTINUATION_TIMEOUT)
            try:
                chunk = sock.recv(RECV_SIZE)
            except TimeoutError:
                break
            data += chunk
    finally:
        sock.settimeout(timeout)
    return data


# -- spp-ctl's side: replies off the socket --------------------------------------------

MAX_REPLY_BYTES: Final = 16 * 1024 * 1024
"""A reply larger than this is refused (the connection is then dropped)."""

_SEPARATORS: Final = b" \t\r\n\x00"


class ProtocolError(Exception):
    """The byte stream is not a sequence of JSON objects; framing is lost."""


class ReplyDecoder:
    """Incremental decoder of a stream of JSON objects.

    Objects may be separated by whitespace and NUL bytes.  ``feed`` returns
    every object completed by the new bytes, in order, and keeps the rest.
    Anything that cannot start or be a JSON object raises
    :class:`ProtocolError`; after that the decoder must not be used again.
    The scan for an object's end resumes where the previous chunk stopped, so
    a reply arriving in many chunks costs time linear in its size.
    """

    def __init__(self, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self._buffer = bytearray()
        self._max_bytes = max_bytes
        self._scan = _Scan()

    @property
    def pending(self) -> int:
        """Number of buffered bytes that are not yet part of a full object."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add ``data`` and return the JSON objects it completes."""
        self._buffer += data
        objects: list[dict[str, Any]] = []
        while True:
            if self._scan.pos == 0:
                self._skip_separators()
                if not self._buffer:
                    return objects
                if self._buffer[0] != ord("{"):
                    raise ProtocolError(f"reply does not start with '{{': {bytes(self._buffer[:40])!r}")
            end = self._scan.advance(self._buffer)
            if end is None:
                if len(self._buffer) > self._max_bytes:
                    raise ProtocolError(f"reply exceeds {self._max_bytes} bytes without ending")
                return objects
            raw = bytes(self._buffer[:end])
            del self._buffer[:end]
            self._scan = _Scan()
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ProtocolError(f"malformed JSON reply: {exc}") from exc
            if not isinstance(value, dict):  # pragma: no cover - starts with '{'
                raise ProtocolError("reply is not a JSON object")
            objects.append(value)

    def _skip_separators(self) -> None:
        index = 0
        while index < len(self._buffer) and self._buffer[index] in _SEPARATORS:
            index += 1
        if index:
            del self._buffer[:index]


class _Scan:
    """Where the search for the end of the JSON object at ``buffer[0]`` stopped.

    Tracks brace depth outside of strings; works on UTF-8 bytes because
    ``{ } " \\`` never occur inside a multi-byte sequence.
    """

    __slots__ = ("depth", "escaped", "in_string", "pos")

    def __init__(self) -> None:
        self.pos = 0
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def advance(self, buffer: bytearray) -> int | None:
        """Scan the bytes not seen yet; the index just past the object, or None (state kept)."""
        depth, in_string, escaped = self.depth, self.in_string, self.escaped
        for index in range(self.pos, len(buffer)):
            byte = buffer[index]
            if in_string:
                if escaped:
                    escaped = False
                elif byte == 0x5C:  # backslash
                    escaped = True
                elif byte == 0x22:  # quote
                    in_string = False
            elif byte == 0x22:
                in_string = True
            elif byte in (0x7B, 0x5B):  # { [
                depth += 1
            elif byte in (0x7D, 0x5D):  # } ]
                depth -= 1
                if depth == 0:
                    return index + 1
        self.pos, self.depth, self.in_string, self.escaped = len(buffer), depth, in_string, escaped
        return None
