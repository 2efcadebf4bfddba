"""Interpretation of replies on the spp-ctl wire; the framing is :mod:`spp.lang.wire`'s.

:func:`check_result` turns an error reply into :class:`~spp.ctl.errors.CommandError`.
"""

from __future__ import annotations

from typing import Any

from spp.ctl.errors import BadReply, CommandError
from spp.lang.wire import MAX_REPLY_BYTES, ProtocolError, ReplyDecoder

__all__ = ["MAX_REPLY_BYTES", "ProtocolError", "ReplyDecoder", "check_result"]


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
