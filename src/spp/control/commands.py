"""SPP's plain-text command language for spp-vf and spp-mirror (SPEC §3, §4).

:func:`parse` turns one command line into a frozen dataclass, or raises
:class:`CommandError` whose message names what was wrong and what is expected.
Parsing is pure: it never touches a manager, so a rejected line changes nothing.

Grammar (``vf``)::

    status
    exit
    component start NAME CORE_ID {forward|merge|classifier}
    component stop NAME
    port add RES_UID [nq Q] {rx|tx} NAME [add_vlantag VID PCP | del_vlantag]
    port del RES_UID [nq Q] {rx|tx} NAME
    classifier_table {add|del} mac {MAC|default} RES_UID
    classifier_table {add|del} vlan VID {MAC|default} RES_UID

``mirror`` has the same commands without ``classifier_table`` and without VLAN
options, and its only component type is ``mirror``.  ``RES_UID`` is ``TYPE:N``; a
queue of a ``phy`` port is written ``phy:0nq1`` or ``phy:0 nq 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from spp import lang
from spp.components.vlan import VlanOp
from spp.ports.base import PortError, PortId

ProcessType = Literal["vf", "mirror"]
Direction = Literal["rx", "tx"]

#: Component types per process type.
COMPONENT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "vf": ("forward", "merge", "classifier"),
    "mirror": ("mirror",),
}
NAME_MAX: Final = 64
CORE_MAX: Final = 1023
VID_MAX: Final = 4095
PCP_MAX: Final = 7

USAGE: Final[dict[str, str]] = {
    "status": "status",
    "exit": "exit",
    "component start": "component start NAME CORE_ID TYPE",
    "component stop": "component stop NAME",
    "port add": "port add RES_UID [nq Q] {rx|tx} NAME [add_vlantag VID PCP | del_vlantag]",
    "port add (mirror)": "port add RES_UID [nq Q] {rx|tx} NAME",
    "port del": "port del RES_UID [nq Q] {rx|tx} NAME",
    "classifier_table": "classifier_table {add|del} mac {MAC|default} RES_UID  or  "
    "classifier_table {add|del} vlan VID {MAC|default} RES_UID",
}

_NAME_RE: Final = re.compile(r"^[\x21-\x7e]+$")
_INT_RE: Final = re.compile(r"^[0-9]{1,9}$")
#: A command line is not valid; the message says what was wrong and what is expected (spp.lang's error).
CommandError = lang.CommandError


# -- the commands -------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """``status``."""


@dataclass(frozen=True)
class Exit:
    """``exit``."""


@dataclass(frozen=True)
class ComponentStart:
    """``component start NAME CORE_ID TYPE``."""

    name: str
    core: int
    ctype: str


@dataclass(frozen=True)
class ComponentStop:
    """``component stop NAME``."""

    name: str


@dataclass(frozen=True)
class PortAdd:
    """``port add RES_UID {rx|tx} NAME [VLAN option]``; ``vlan`` None: no option given."""

    port: PortId
    direction: Direction
    name: str
    vlan: VlanOp | None = None


@dataclass(frozen=True)
class PortDel:
    """``port del RES_UID {rx|tx} NAME``."""

    port: PortId
    direction: Direction
    name: str


@dataclass(frozen=True)
class ClassifierTable:
    """``classifier_table {add|del} ...``.

    ``vlan`` is None for the untagged table (``mac`` form) and 0..4095 for the
    ``vlan`` form; ``mac`` is the lower-case address, or None for ``default``
    (a flag, not an address).
    """

    action: Literal["add", "del"]
    vlan: int | None
    mac: str | None
    port: PortId

    @property
    def mac_int(self) -> int:
        """The address as a 48-bit integer (``-1`` for ``default``)."""
        return -1 if self.mac is None else int(self.mac.replace(":", ""), 16)

    @property
    def value(self) -> str:
        """SPP's status ``value``: ``MAC``/``default`` or ``VID/MAC``/``VID/default``."""
        m = "default" if self.mac is None else self.mac
        return m if self.vlan is None else f"{self.vlan}/{m}"


Command = Status | Exit | ComponentStart | ComponentStop | PortAdd | PortDel | ClassifierTable


# -- field parsers ------------------------------------------------------------


def parse_int(what: str, text: str, low: int, high: int) -> int:
    """``text`` as a decimal integer in ``low..high``."""
    if not _INT_RE.fullmatch(text):
        raise CommandError(f"invalid {what} {text!r}: must be an integer {low}..{high}")
    value = int(text)
    if not low <= value <= high:
        raise CommandError(f"invalid {what} '{text}': must be {low}..{high}")
    return value


def parse_name(text: str) -> str:
    """A component name: 1..64 visible ASCII characters."""
    if len(text) > NAME_MAX or not _NAME_RE.fullmatch(text):
        raise CommandError(f"invalid component name {text!r}: expected 1..{NAME_MAX} visible ASCII characters")
    return text


def parse_mac(text: str) -> str | None:
    """``XX:XX:XX:XX:XX:XX`` (returned lower-case) or ``default`` (returned as None)."""
    value = lang.mac(text, allow_default=True)
    return None if value == "default" else value


def parse_port(tokens: list[str], pos: int) -> tuple[PortId, int]:
    """A resource id at ``tokens[pos]`` (``phy:0``, ``phy:0nq1``, or ``phy:0 nq 1``).

    Returns the id and the position after it.
    """
    text = tokens[pos]
    try:
        pid = PortId.parse(text)
    except PortError as e:
        raise CommandError(str(e)) from None
    pos += 1
    if pos < len(tokens) and tokens[pos] == "nq":
        if pid.queue or pos + 1 >= len(tokens):
            raise CommandError(f"invalid port {text!r} followed by 'nq': expected RES_UID nq Q (e.g. phy:0 nq 1)")
        pid = PortId(pid.ptype, pid.index, parse_int("queue", tokens[pos + 1], 0, 1023))
        pos += 2
    if pid.queue and pid.ptype != "phy":
        raise CommandError(f"invalid port '{pid}': only phy ports have queues")
    return pid, pos


def _direction(text: str) -> Direction:
    if text == "rx":
        return "rx"
    if text == "tx":
        return "tx"
    raise CommandError(f"invalid direction {text!r}: expected rx or tx")


def _arity(key: str, usage_key: str | None = None) -> CommandError:
    return CommandError(f"wrong number of arguments for '{key}': expected {USAGE[usage_key or key]}")


# -- the parser -----------------------------------------------------------------


def tokenize(line: str) -> list[str]:
    """Split a wire command; a trailing newline or NUL is tolerated."""
    return line.replace("\0", " ").split()


def parse(line: str, process: ProcessType = "vf") -> Command:
    """Parse one command of a ``process`` (``vf`` or ``mirror``); see the module docstring."""
    if process not in COMPONENT_TYPES:
        raise ValueError(f"process type {process!r}: expected vf or mirror")
    tokens = tokenize(line)
    if not tokens:
        raise CommandError(f"empty command: expected one of {_commands(process)}")
    head = tokens[0]
    if head == "status":
        if len(tokens) != 1:
            raise _arity("status")
        return Status()
    if head == "exit":
        if len(tokens) != 1:
            raise _arity("exit")
        return Exit()
    if head == "component":
        return _component(tokens, process)
    if head == "port":
        return _port(tokens, process)
    if head == "classifier_table":
        if process != "vf":
            raise CommandError(f"unknown command 'classifier_table' for spp-{process}: "
                               f"expected one of {_commands(process)}")
        return _classifier(tokens)
    raise CommandError(f"unknown command {head!r}: expected one of {_commands(process)}")


def _commands(process: str) -> str:
    names = ["status", "component", "port"]
    if process == "vf":
        names.append("classifier_table")
    return ", ".join(names) + " or exit"


def _component(tokens: list[str], process: str) -> Command:
    sub = tokens[1] if len(tokens) > 1 else ""
    if sub == "start":
        if len(tokens) != 5:
            raise _arity("component start")
        name = parse_name(tokens[2])
        core = parse_int("core id", tokens[3], 0, CORE_MAX)
        types = COMPONENT_TYPES[process]
        if tokens[4] not in types:
            expected = types[0] if len(types) == 1 else ", ".join(types[:-1]) + " or " + types[-1]
            raise CommandError(f"unknown component type {tokens[4]!r}: expected {expected}")
        return ComponentStart(name, core, tokens[4])
    if sub == "stop":
        if len(tokens) != 3:
            raise _arity("component stop")
        return ComponentStop(parse_name(tokens[2]))
    raise CommandError(f"unknown subcommand {'component ' + sub!r}: expected component start or component stop")


def _port(tokens: list[str], process: str) -> Command:
    sub = tokens[1] if len(tokens) > 1 else ""
    if sub not in ("add", "del"):
        raise CommandError(f"unknown subcommand {'port ' + sub!r}: expected port add or port del")
    key = f"port {sub}"
    usage = "port add (mirror)" if sub == "add" and process == "mirror" else key
    if len(tokens) < 5:
        raise _arity(key, usage)
    pid, pos = parse_port(tokens, 2)
    if len(tokens) < pos + 2:
        raise _arity(key, usage)
    direction = _direction(tokens[pos])
    name = parse_name(tokens[pos + 1])
    rest = tokens[pos + 2 :]
    if sub == "del":
        if rest:
            raise _arity(key)
        return PortDel(pid, direction, name)
    if not rest:
        return PortAdd(pid, direction, name)
    if process != "vf":
        raise CommandError(f"VLAN option {rest[0]!r} is not supported by spp-{process}: expected {USAGE[usage]}")
    if rest[0] == "add_vlantag":
        if len(rest) != 3:
            raise _arity(key)
        vid = parse_int("VLAN id", rest[1], 0, VID_MAX)
        pcp = parse_int("PCP", rest[2], 0, PCP_MAX)
        return PortAdd(pid, direction, name, VlanOp("add", vid, pcp))
    if rest[0] == "del_vlantag":
        if len(rest) != 1:
            raise _arity(key)
        return PortAdd(pid, direction, name, VlanOp("del"))
    raise CommandError(f"unknown VLAN option {rest[0]!r}: expected add_vlantag VID PCP or del_vlantag")


def _classifier(tokens: list[str]) -> Command:
    if len(tokens) < 3:
        raise _arity("classifier_table")
    action = tokens[1]
    if action not in ("add", "del"):
        raise CommandError(f"invalid classifier_table action {action!r}: expected add or del")
    kind = tokens[2]
    if kind == "mac":
        if len(tokens) < 5:
            raise _arity("classifier_table")
        vlan: int | None = None
        mac_text, port_pos = tokens[3], 4
    elif kind == "vlan":
        if len(tokens) < 6:
            raise _arity("classifier_table")
        vlan = parse_int("VLAN id", tokens[3], 0, VID_MAX)
        mac_text, port_pos = tokens[4], 5
    else:
        raise CommandError(f"invalid classifier_table type {kind!r}: expected mac or vlan")
    mac = parse_mac(mac_text)
    pid, end = parse_port(tokens, port_pos)
    if end != len(tokens):
        raise _arity("classifier_table")
    return ClassifierTable("add" if action == "add" else "del", vlan, mac, pid)
