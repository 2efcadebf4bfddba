"""One command layer for spp-nfv, spp-pcap and the primary's forwarder (SPP 19.11's syntax).

Every command is a frozen dataclass.  :func:`parse` turns the wire text a process
receives (``patch phy:0 ring:0``) into one, or raises :class:`CommandError` whose
message is the text every front end shows (the process's error reply, spp-ctl's
``400 command error: ...``/``invalid body: ...``, the CLI's ``error: ...``);
:func:`render` turns a command back into its wire text, the way SPP's spp-ctl sends
it.  The shared field validators (port ids, MAC addresses, core lists, integers)
live here too and use full matches, so ``"ring:0\\n"`` or a MAC with a trailing
newline is refused instead of reaching the wire as two tokens.

Grammars (``process`` argument of :func:`parse`)::

    nfv:      status | exit | forward | stop | add PORT | del PORT
              | patch SRC DST | patch reset
    pcap:     status | exit | start | stop
    primary:  the nfv commands (the primary's forwarder), plus clear and
              launch CLIENT_ID PROC_NAME JSON            (spp-ctl's form)
              launch CLIENT_ID PROC_NAME EAL... -- APP... (SPP 19.11's form)

``PORT`` is ``TYPE:N`` (``phy:0``, ``ring:3``, ``vhost:1``, ``phy:0nq1``); SPP's
``phy:0 nq 1`` (three tokens) is read as ``phy:0nq1``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from spp.ports.base import PortId
from spp.runtime.dataplane import PORT_TYPES

ProcessKind = Literal["nfv", "pcap", "primary"]

_PORT_RE: Final = re.compile(r"([a-z]+):([0-9]{1,9})(?:nq([0-9]{1,4}))?")
_MAC_RE: Final = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_INT_RE: Final = re.compile(r"[0-9]{1,9}")

#: Process names ``launch`` accepts (SPP's and ours) and the kind of secondary each starts.
LAUNCH_KINDS: Final[Mapping[str, str]] = {
    **{f"spp_{k}": k for k in ("nfv", "vf", "mirror", "pcap")},
    **{f"spp-{k}": k for k in ("nfv", "vf", "mirror", "pcap")},
    **{k: k for k in ("nfv", "vf", "mirror", "pcap")},
}


class CommandError(ValueError):
    """Bad input; ``str(e)`` says what was wrong and what would be right.

    ``field`` names the offending REST field when one is known (``src``, ``port``...).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# -- field validators (the one place for each) ---------------------------------------


def port_id(text: object, what: str = "port") -> PortId:
    """``TYPE:N`` or ``phy:NnqQ`` as a :class:`PortId` (full match, known type)."""
    if not isinstance(text, str):
        raise CommandError(f"invalid {what}: must be a string such as ring:0", what)
    m = _PORT_RE.fullmatch(text)
    if m is None:
        raise CommandError(f"invalid {what} {text!r}: expected TYPE:N such as phy:0 or ring:1", what)
    ptype, index, queue = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if ptype not in PORT_TYPES:
        raise CommandError(f"invalid {what} {text!r}: unknown port type {ptype!r}; expected one of "
                           f"{', '.join(PORT_TYPES)}", what)
    if queue and ptype != "phy":
        raise CommandError(f"invalid {what} {text!r}: only phy ports have queues", what)
    return PortId(ptype, index, queue)


def mac(text: object, what: str = "MAC address", *, allow_default: bool = False) -> str:
    """``XX:XX:XX:XX:XX:XX`` (returned lower-case), or ``default`` when allowed (full match)."""
    if allow_default and text == "default":
        return "default"
    if not isinstance(text, str) or _MAC_RE.fullmatch(text) is None:
        alt = " or default" if allow_default else ""
        raise CommandError(f"invalid {what} {text!r}: expected XX:XX:XX:XX:XX:XX (hex){alt}", what)
    return text.lower()


def integer(text: object, what: str, low: int, high: int) -> int:
    """A decimal integer in ``low..high`` (an int, or a string of digits; full match)."""
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise CommandError(f"invalid {what} {text!r}: must be an integer {low}..{high}", what)
    if isinstance(text, str):
        if _INT_RE.fullmatch(text) is None:
            raise CommandError(f"invalid {what} {text!r}: must be an integer {low}..{high}", what)
        text = int(text)
    if not low <= text <= high:
        raise CommandError(f"invalid {what} {text}: must be {low}..{high}", what)
    return text


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
    """A port as the wire writes it (``phy:0``, ``phy:0nq1``)."""
    return str(pid)


# -- the commands ------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """``status``."""


@dataclass(frozen=True)
class Exit:
    """``exit``."""


@dataclass(frozen=True)
class Forward:
    """``forward``: start forwarding every patch."""


@dataclass(frozen=True)
class Start:
    """``start`` (spp-pcap): start capturing."""


@dataclass(frozen=True)
class Stop:
    """``stop``: stop forwarding (nfv, primary) or capturing (pcap)."""


@dataclass(frozen=True)
class Clear:
    """``clear`` (primary): zero the port counters."""


@dataclass(frozen=True)
class AddPort:
    """``add PORT``."""

    port: PortId


@dataclass(frozen=True)
class DelPort:
    """``del PORT``."""

    port: PortId


@dataclass(frozen=True)
class Patch:
    """``patch SRC DST``: frames received on SRC are sent to DST."""

    src: PortId
    dst: PortId


@dataclass(frozen=True)
class PatchReset:
    """``patch reset``: remove every patch."""


@dataclass(frozen=True)
class Launch:
    """``launch CLIENT_ID PROC_NAME ...`` (primary): start a secondary.

    ``body`` is SPP's REST launch body (``{"eal": {...}, "app": {...}}``).
    """

    client_id: int
    proc_name: str
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return LAUNCH_KINDS[self.proc_name]


Command = Status | Exit | Forward | Start | Stop | Clear | AddPort | DelPort | Patch | PatchReset | Launch

USAGE: Final[dict[str, str]] = {
    "status": "status",
    "exit": "exit",
    "forward": "forward",
    "start": "start",
    "stop": "stop",
    "clear": "clear",
    "add": "add PORT (e.g. add ring:0)",
    "del": "del PORT (e.g. del ring:0)",
    "patch": "patch SRC DST (e.g. patch phy:0 ring:0) or patch reset",
    "launch": "launch CLIENT_ID {nfv|vf|mirror|pcap} [-l CORES] ... [-- APP OPTIONS]",
}
#: The commands each process understands (the primary's own legacy commands are not listed).
COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "nfv": ("status", "add", "del", "patch", "forward", "stop", "exit"),
    "pcap": ("status", "start", "stop", "exit"),
    "primary": ("status", "add", "del", "patch", "forward", "stop", "clear", "launch", "exit"),
}


def _arity(head: str) -> CommandError:
    return CommandError(f"wrong number of arguments for '{head}': expected {USAGE[head]}")


def tokenize(line: str) -> list[str]:
    """Split a wire command (NULs and any whitespace separate tokens); ``phy:0 nq 1`` → ``phy:0nq1``."""
    return _merge_nq(line.replace("\0", " ").split())


def _merge_nq(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        if i + 2 < len(words) and words[i + 1] == "nq" and words[i].startswith("phy:") and "nq" not in words[i]:
            out.append(f"{words[i]}nq{words[i + 2]}")
            i += 3
            continue
        out.append(words[i])
        i += 1
    return out


def parse(line: str, process: ProcessKind) -> Command:
    """Parse one command line of ``process``; see the module docstring."""
    return parse_words(tokenize(line), process, raw=line)


def parse_words(words: list[str], process: ProcessKind, *, raw: str | None = None) -> Command:
    """:func:`parse` for an already split line (the CLI's words after ``nfv N;``)."""
    words = _merge_nq(words)
    known = COMMANDS[process]
    listing = ", ".join(known[:-1]) + " or " + known[-1]
    if not words:
        raise CommandError(f"empty command: expected one of {listing}")
    head, args = words[0], words[1:]
    if head not in known:
        raise CommandError(f"unknown command {head!r} for spp-{process if process != 'primary' else 'primary'}: "
                           f"expected one of {listing}")
    simple: dict[str, Command] = {"status": Status(), "exit": Exit(), "forward": Forward(), "start": Start(),
                                  "stop": Stop(), "clear": Clear()}
    if head in simple:
        if args:
            raise _arity(head)
        return simple[head]
    if head in ("add", "del"):
        if len(args) != 1:
            raise _arity(head)
        pid = port_id(args[0])
        return AddPort(pid) if head == "add" else DelPort(pid)
    if head == "patch":
        if args == ["reset"]:
            return PatchReset()
        if len(args) != 2:
            raise _arity("patch")
        return Patch(port_id(args[0], "src"), port_id(args[1], "dst"))
    assert head == "launch"
    return _launch(args, raw)


def _launch(args: list[str], raw: str | None) -> Launch:
    if len(args) < 2:
        raise _arity("launch")
    cid = integer(args[0], "client id", 0, 255)
    name = args[1]
    if name not in LAUNCH_KINDS:
        raise CommandError(f"launch: unknown process {name!r}: expected spp_nfv, spp_vf, spp_mirror or spp_pcap",
                           "proc_name")
    rest = args[2:]
    if rest and rest[0].startswith("{"):
        text = " ".join(rest)
        if raw is not None:  # keep the JSON exactly as sent (spaces inside strings)
            text = raw.split(None, 3)[3] if len(raw.split(None, 3)) == 4 else text
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise CommandError(f"launch: the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise CommandError("launch: the body must be a JSON object")
        return Launch(cid, name, body)
    eal_words, app_words = rest, []
    if "--" in rest:
        cut = rest.index("--")
        eal_words, app_words = rest[:cut], rest[cut + 1 :]
    return Launch(cid, name, {"client_id": cid, "proc_name": name, "eal": _options(eal_words),
                              "app": _options(app_words)})


def _options(words: list[str]) -> dict[str, str]:
    """``-l 1,2 --vhost-client -s H:P`` → ``{"-l": "1,2", "--vhost-client": "", "-s": "H:P"}``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        key = words[i]
        if not key.startswith("-"):
            raise CommandError(f"launch: expected an option such as -l, got {key!r}")
        if i + 1 < len(words) and not words[i + 1].startswith("-"):
            out[key] = words[i + 1]
            i += 2
        else:
            out[key] = ""
            i += 1
    return out


def render(cmd: Command) -> str:
    """The wire text of ``cmd`` (what SPP's spp-ctl sends)."""
    if isinstance(cmd, AddPort):
        return f"add {wire_port(cmd.port)}"
    if isinstance(cmd, DelPort):
        return f"del {wire_port(cmd.port)}"
    if isinstance(cmd, Patch):
        return f"patch {wire_port(cmd.src)} {wire_port(cmd.dst)}"
    if isinstance(cmd, PatchReset):
        return "patch reset"
    if isinstance(cmd, Launch):
        return f"launch {cmd.client_id} {cmd.proc_name} {json.dumps(dict(cmd.body), separators=(',', ':'))}"
    return type(cmd).__name__.lower()
