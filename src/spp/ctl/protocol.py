"""Framing and interpretation of replies on the spp-ctl wire.

Commands go out as plain ASCII with no terminator, one at a time.  A reply is
one JSON object, usually followed by ``\\n`` (a NUL is tolerated too), and may
arrive split over several TCP segments.  :class:`ReplyDecoder` accumulates
bytes and yields complete objects; :func:`check_result` turns an error reply
into :class:`~spp.ctl.errors.CommandError`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from spp.ctl.errors import BadReply, CommandError

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


def _object_end(buffer: bytearray) -> int | None:
    """Index just past the JSON object starting at ``buffer[0]``, or None."""
    return _Scan().advance(buffer)


def check_result(reply: dict[str, Any]) -> dict[str, Any]:
    """Return ``reply`` if it reports success, else raise.

    A reply whose ``results`` list holds an entry with ``"result"`` other than
    ``"success"`` raises :class:`CommandError` with that entry's
    ``error_details.message``.  A reply without ``results`` counts as success
    (the primary's author may omit it).  A ``results`` that is not a list of
    objects raises :class:`BadReply`.
    """
    results = reply.get("results")
    if results is None:
        return reply
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise BadReply(f"'results' is not a list of objects: {results!r}")
    for result in results:
        if result.get("result") != "success":
            details = result.get("error_details")
            message = details.get("message") if isinstance(details, dict) else None
            if not isinstance(message, str) or not message:
                message = f"process answered {result.get('result')!r}"
            raise CommandError(message)
    return reply
