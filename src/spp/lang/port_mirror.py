"""The ``port_mirror`` command (modelled on OpenStack TaaS), answered by every process::

    port_mirror add NAME SRC_PORT {rx|tx|both} DST_PORT [vlan RANGES] [src_mac MAC] [dst_mac MAC]
                    [flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep]
    port_mirror del NAME
    port_mirror list

:func:`parse_words` checks the syntax and every field that needs no stack (the name,
the port ids, the MACs, the VLAN ranges, numbers and choices); what needs the stack
(does the port exist, is the flow's protocol known, is the snaplen in the pool's
range) is checked where the mirror is registered (:mod:`spp.mirror.registry`).
spp-ctl's ``POST /v1/port_mirrors`` builds a :class:`PortMirrorAdd` and sends
:func:`render`'s text; the CLI parses the same words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from spp.lang.base import CommandError, choice, integer, mac, port_id, wire_port
from spp.ports.base import PortId

USAGE: Final = ("port_mirror add NAME SRC_PORT {rx|tx|both} DST_PORT [vlan RANGES] [src_mac MAC] [dst_mac MAC] "
                "[flow PROTO SIP SPORT DIP DPORT] [snaplen N] [copy shallow|deep] | port_mirror del NAME | "
                "port_mirror list")
DIRECTIONS: Final = ("rx", "tx", "both")
COPY_MODES: Final = ("shallow", "deep")
#: Options of ``add`` and how many values each takes.
OPTIONS: Final[dict[str, int]] = {"vlan": 1, "src_mac": 1, "dst_mac": 1, "flow": 5, "snaplen": 1, "copy": 1}
FLOW_FIELDS: Final = ("proto", "src", "sport", "dst", "dport")
SNAPLEN_MAX: Final = 65535

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_VLAN_RE: Final = re.compile(r"[0-9]{1,4}(?:-[0-9]{1,4})?(?:,[0-9]{1,4}(?:-[0-9]{1,4})?)*")
NAME_REASON: Final = "must be 1 to 32 letters, digits, '_', '.' or '-'"
VLAN_REASON: Final = "must be VLAN ids and ranges, e.g. 9,18-27"


@dataclass(frozen=True)
class PortMirrorAdd:
    """``port_mirror add ...``: ``flow`` is the five words (``*`` matches anything)."""

    name: str
    source: PortId
    direction: str
    destination: PortId
    vlan: str | None = None
    src_mac: str | None = None
    dst_mac: str | None = None
    flow: tuple[str, str, str, str, str] | None = None
    snaplen: int = 0
    copy: str = "shallow"


@dataclass(frozen=True)
class PortMirrorDel:
    """``port_mirror del NAME``."""

    name: str


@dataclass(frozen=True)
class PortMirrorList:
    """``port_mirror list``."""


Command = PortMirrorAdd | PortMirrorDel | PortMirrorList


def mirror_name(text: object, field: str = "name") -> str:
    """A mirror's name: 1 to 32 letters, digits, ``_``, ``.`` or ``-``."""
    if not isinstance(text, str) or _NAME_RE.fullmatch(text) is None:
        raise CommandError(f"invalid mirror name {text!r}: {NAME_REASON}", field, NAME_REASON)
    return text


def vlan_ranges(text: object, field: str = "vlan_filter") -> str:
    """TaaS's ``vlan_filter`` in form, ``9,18-27`` (its values: :func:`spp.mirror.filters.parse_vlan_ranges`)."""
    if not isinstance(text, str) or _VLAN_RE.fullmatch(text) is None:
        raise CommandError(f"invalid VLAN filter {text!r}: {VLAN_REASON}", field, VLAN_REASON)
    return text


def port_mirror_add(name: object, source: object, direction: object, destination: object, *,
                    vlan: object = None, src_mac: object = None, dst_mac: object = None,
                    flow: tuple[str, str, str, str, str] | None = None, snaplen: object = 0,
                    copy: object = "shallow") -> PortMirrorAdd:
    """A checked ``port_mirror add`` (REST field names: ``vlan_filter``, ``source``, ...)."""
    return PortMirrorAdd(
        mirror_name(name), port_id(source, "source", field="source"),
        choice(direction, "direction", DIRECTIONS, field="direction"),
        port_id(destination, "destination", field="destination"),
        None if vlan is None else vlan_ranges(vlan),
        _mac_as_given(src_mac, "source MAC", "src_mac"), _mac_as_given(dst_mac, "destination MAC", "dst_mac"),
        flow, integer(snaplen, "snaplen", 0, SNAPLEN_MAX, field="snaplen"),
        choice(copy, "copy mode", COPY_MODES, field="copy"))


def _mac_as_given(text: object, what: str, field: str) -> str | None:
    if text is None:
        return None
    mac(text, what, field=field)
    return str(text)


def parse_words(args: list[str]) -> Command:
    """The words after ``port_mirror``."""
    if not args:
        raise CommandError(f"port_mirror: missing subcommand; usage: {USAGE}")
    sub, rest = args[0], args[1:]
    if sub == "del":
        if len(rest) != 1:
            raise CommandError("port_mirror del: expected exactly one NAME")
        return PortMirrorDel(rest[0])
    if sub == "list":
        if rest:
            raise CommandError("port_mirror list: takes no arguments")
        return PortMirrorList()
    if sub != "add":
        raise CommandError(f"port_mirror: unknown subcommand {sub!r}; usage: {USAGE}")
    if len(rest) < 4:
        raise CommandError(f"port_mirror add: expected NAME SRC_PORT {{rx|tx|both}} DST_PORT; usage: {USAGE}")
    opts: dict[str, list[str]] = {}
    i = 4
    while i < len(rest):
        key = rest[i]
        if key not in OPTIONS:
            raise CommandError(f"port_mirror add: unknown option {key!r}; options: {', '.join(OPTIONS)}")
        if key in opts:
            raise CommandError(f"port_mirror add: option {key!r} given twice")
        values = rest[i + 1 : i + 1 + OPTIONS[key]]
        if len(values) < OPTIONS[key]:
            what = "PROTO SIP SPORT DIP DPORT (each may be '*')" if key == "flow" else "a value"
            raise CommandError(f"port_mirror add: option {key!r} needs {what}")
        opts[key] = values
        i += 1 + OPTIONS[key]
    one = {k: v[0] for k, v in opts.items() if k != "flow"}
    flow = opts.get("flow")
    return port_mirror_add(rest[0], rest[1], rest[2], rest[3], vlan=one.get("vlan"), src_mac=one.get("src_mac"),
                           dst_mac=one.get("dst_mac"), snaplen=one.get("snaplen", 0), copy=one.get("copy", "shallow"),
                           flow=None if flow is None else (flow[0], flow[1], flow[2], flow[3], flow[4]))


def render(cmd: Command) -> str:
    """The wire text of ``cmd`` (options only where they differ from the defaults)."""
    if isinstance(cmd, PortMirrorDel):
        return f"port_mirror del {cmd.name}"
    if isinstance(cmd, PortMirrorList):
        return "port_mirror list"
    words = ["port_mirror", "add", cmd.name, wire_port(cmd.source), cmd.direction, wire_port(cmd.destination)]
    for key, value in (("vlan", cmd.vlan), ("src_mac", cmd.src_mac), ("dst_mac", cmd.dst_mac)):
        if value is not None:
            words += [key, value]
    if cmd.flow is not None:
        words += ["flow", *cmd.flow]
    if cmd.snaplen:
        words += ["snaplen", str(cmd.snaplen)]
    if cmd.copy != "shallow":
        words += ["copy", cmd.copy]
    return " ".join(words)
