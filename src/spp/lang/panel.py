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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from spp.lang.base import CommandError, Exit, Status, integer, merge_nq, port_id, tokenize, wire_port, wire_res
from spp.ports.base import PortId

ProcessKind = Literal["nfv", "pcap", "primary"]

#: Process names ``launch`` accepts (SPP's and ours) and the kind of secondary each starts.
LAUNCH_KINDS: Final[Mapping[str, str]] = {
    **{f"spp_{k}": k for k in ("nfv", "vf", "mirror", "pcap")},
    **{f"spp-{k}": k for k in ("nfv", "vf", "mirror", "pcap")},
    **{k: k for k in ("nfv", "vf", "mirror", "pcap")},
}


# -- the commands ------------------------------------------------------------------


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
    """``add PORT`` (the primary also reads SPP's ``port add PORT``: ``legacy``)."""

    port: PortId
    legacy: bool = False


@dataclass(frozen=True)
class DelPort:
    """``del PORT`` (the primary also reads SPP's ``port del PORT``: ``legacy``)."""

    port: PortId
    legacy: bool = False


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
    "port": "port {add|del} PORT (e.g. port add ring:0)",
    "launch": "launch CLIENT_ID {nfv|vf|mirror|pcap} [-l CORES] ... [-- APP OPTIONS]",
}
#: The commands each process understands (the primary's own legacy commands are not listed).
COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "nfv": ("status", "add", "del", "patch", "forward", "stop", "exit"),
    "pcap": ("status", "start", "stop", "exit"),
    "primary": ("status", "add", "del", "port", "patch", "forward", "stop", "clear", "launch", "exit"),
}


def _arity(head: str) -> CommandError:
    return CommandError(f"wrong number of arguments for '{head}': expected {USAGE[head]}")


def parse(line: str, process: ProcessKind) -> Command:
    """Parse one command line of ``process``; see the module docstring."""
    return parse_words(tokenize(line), process, raw=line)


def parse_words(words: list[str], process: ProcessKind, *, raw: str | None = None) -> Command:
    """:func:`parse` for an already split line (the CLI's words after ``nfv N;``)."""
    words = merge_nq(words)
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
    if head == "port":
        if len(args) != 2 or args[0] not in ("add", "del"):
            raise _arity(head)
        pid = port_id(args[1])
        return AddPort(pid, legacy=True) if args[0] == "add" else DelPort(pid, legacy=True)
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
    if isinstance(cmd, AddPort | DelPort):
        word = "add" if isinstance(cmd, AddPort) else "del"
        return f"port {word} {wire_res(cmd.port)}" if cmd.legacy else f"{word} {wire_port(cmd.port)}"
    if isinstance(cmd, Patch):
        return f"patch {wire_port(cmd.src)} {wire_port(cmd.dst)}"
    if isinstance(cmd, PatchReset):
        return "patch reset"
    if isinstance(cmd, Launch):
        return f"launch {cmd.client_id} {cmd.proc_name} {json.dumps(dict(cmd.body), separators=(',', ':'))}"
    return type(cmd).__name__.lower()
