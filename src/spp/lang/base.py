"""The field validators every grammar of :mod:`spp.lang` shares, and its error.

Each validator takes the value as the wire gives it (a string) or as a REST body gives
it (a string or an int), uses full matches (so ``"ring:0\\n"`` or a MAC with a trailing
newline is refused instead of reaching the wire as two tokens) and raises
:class:`CommandError`, whose ``message`` is the text every front end shows
(``invalid VLAN id '5000': must be in range 0-4095``) and whose ``reason`` is the part a
REST reply puts after the field name (``field 'vlan.id': must be in range 0-4095``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from spp.ports.base import PortId
from spp.runtime.dataplane import PORT_TYPES

_PORT_RE: Final = re.compile(r"([a-z]+):([0-9]{1,9})(?:nq([0-9]{1,4}))?")
_MAC_RE: Final = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_INT_RE: Final = re.compile(r"[0-9]{1,9}")
_NAME_RE: Final = re.compile(r"[\x21-\x7e]+")

#: Component types per secondary kind (the one list).
COMPONENT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "vf": ("forward", "merge", "classifier"),
    "mirror": ("mirror",),
}
NAME_MAX: Final = 64
CORE_MAX: Final = 1023
VID_MAX: Final = 4095
PCP_MAX: Final = 7
QUEUE_MAX: Final = 1023
DIRECTIONS: Final = ("rx", "tx")


class CommandError(ValueError):
    """Bad input; ``str(e)`` says what was wrong and what would be right.

    ``field`` names the offending REST field when one is known (``src``, ``port``...);
    ``reason`` is the message without the value (``must be in range 0-4095``).
    """

    def __init__(self, message: str, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason if reason is not None else message


def _bad(what: str, value: object, reason: str, field: str | None) -> CommandError:
    shown = f"'{value}'" if isinstance(value, int) and not isinstance(value, bool) else repr(value)  # as the wire
    return CommandError(f"invalid {what} {shown}: {reason}", field if field is not None else what, reason)


def words(choices: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``."""
    quoted = [f"'{c}'" for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# -- field validators (the one place for each) ---------------------------------------

PORT_REASON: Final = "must be TYPE:N such as phy:0, ring:1 or phy:0nq1"


def port_id(text: object, what: str = "port", field: str | None = None) -> PortId:
    """``TYPE:N`` or ``phy:NnqQ`` as a :class:`PortId` (full match, known type)."""
    if not isinstance(text, str):
        raise _bad(what, text, "must be a string such as ring:0", field)
    m = _PORT_RE.fullmatch(text)
    if m is None:
        raise _bad(what, text, PORT_REASON, field)
    ptype, index, queue = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if ptype not in PORT_TYPES:
        raise _bad(what, text, f"unknown port type {ptype!r}: expected one of {', '.join(PORT_TYPES)}", field)
    if m.group(3) is not None and ptype != "phy":
        raise _bad(what, text, "only phy ports have queues", field)
    return PortId(ptype, index, queue)


def mac(text: object, what: str = "MAC address", *, allow_default: bool = False, field: str | None = None) -> str:
    """``XX:XX:XX:XX:XX:XX`` (returned lower-case), or ``default`` when allowed (full match)."""
    if allow_default and text == "default":
        return "default"
    if not isinstance(text, str) or _MAC_RE.fullmatch(text) is None:
        alt = " or default" if allow_default else ""
        raise _bad(what, text, f"must be a MAC address XX:XX:XX:XX:XX:XX (hex digits){alt}", field)
    return text.lower()


def integer(text: object, what: str, low: int, high: int, field: str | None = None) -> int:
    """A decimal integer in ``low..high`` (an int, or a string of digits; full match)."""
    if isinstance(text, bool) or not isinstance(text, int | str) or (
            isinstance(text, str) and _INT_RE.fullmatch(text) is None):
        raise _bad(what, text, f"must be an integer {low}-{high}", field)
    value = int(text)
    if not low <= value <= high:
        raise _bad(what, text, f"must be in range {low}-{high}", field)
    return value


def name(text: object, what: str = "component name", field: str | None = None) -> str:
    """A component name: 1..64 visible ASCII characters (one token of the wire)."""
    if not isinstance(text, str):
        raise _bad(what, text, "must be a string", field)
    if not text:
        raise _bad(what, text, "must not be empty", field)
    if len(text) > NAME_MAX:
        raise _bad(what, text, f"must be at most {NAME_MAX} characters", field)
    if _NAME_RE.fullmatch(text) is None:
        raise _bad(what, text, "must be visible ASCII characters without spaces", field)
    return text


def choice(text: object, what: str, choices: Sequence[str], field: str | None = None) -> str:
    """``text`` if it is one of ``choices``."""
    if not isinstance(text, str) or text not in choices:
        raise _bad(what, text, f"must be {words(choices)}", field)
    return text


def component_type(text: object, process: str, field: str | None = None) -> str:
    """A component type a ``process`` (vf or mirror) runs."""
    return choice(text, "component type", COMPONENT_TYPES[process], field)


def direction(text: object, field: str | None = None) -> str:
    """``rx`` or ``tx``."""
    return choice(text, "direction", DIRECTIONS, field)


#: The widest ``-l`` range accepted (a larger one is a typo, not a host).
MAX_CORES = 4096


def parse_cores(text: str) -> list[int]:
    """``-l`` syntax: ``0,1,2``, ``2-6``, ``1-3,5``; order kept, duplicates refused.

    Raises ``ValueError`` (:class:`CommandError`) saying what would be right.
    """
    cores: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        lo, sep, hi = part.partition("-")
        if _INT_RE.fullmatch(lo) is None or (sep and _INT_RE.fullmatch(hi) is None):
            raise CommandError(f"invalid core list {text!r}: expected e.g. 0,1,2 or 2-6 or 1-3,5", "cores")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise CommandError(f"invalid core range {part!r} in {text!r}: the range must go upwards", "cores")
        if last - first >= MAX_CORES:
            raise CommandError(f"invalid core range {part!r} in {text!r}: it spans more than {MAX_CORES} cores",
                               "cores")
        for c in range(first, last + 1):
            if c in cores:
                raise CommandError(f"invalid core list {text!r}: core {c} appears twice", "cores")
            cores.append(c)
    return cores


def wire_port(pid: PortId) -> str:
    """A port as spp-nfv's wire writes it (``phy:0``, ``phy:0nq1``)."""
    return str(pid)


def wire_res(pid: PortId) -> str:
    """A port as spp-vf's wire writes it (SPP's spp-ctl: ``phy:0``, ``phy:0 nq 1``)."""
    return f"{pid.ptype}:{pid.index}" if not pid.queue else f"{pid.ptype}:{pid.index} nq {pid.queue}"


# -- tokens --------------------------------------------------------------------------


def tokenize(line: str) -> list[str]:
    """Split a wire command (NULs and any whitespace separate tokens); ``phy:0 nq 1`` → ``phy:0nq1``."""
    return merge_nq(line.replace("\0", " ").split())


def merge_nq(tokens: list[str]) -> list[str]:
    """``phy:0 nq 1`` → ``phy:0nq1`` (SPP writes a queue as three tokens); never raises.

    An ``nq`` not followed by a number is left alone for the parser to report.
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if (i + 2 < len(tokens) and tokens[i + 1] == "nq" and ":" in tokens[i] and "nq" not in tokens[i]
                and _INT_RE.fullmatch(tokens[i + 2])):
            out.append(f"{tokens[i]}nq{int(tokens[i + 2])}")
            i += 3
            continue
        out.append(tokens[i])
        i += 1
    return out


# -- the commands every process answers --------------------------------------------


@dataclass(frozen=True)
class Status:
    """``status``."""


@dataclass(frozen=True)
class Exit:
    """``exit``."""
