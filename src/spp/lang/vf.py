"""SPP's command language of spp-vf and spp-mirror (SPEC §3, §4): parse and render.

:func:`parse` turns one command line into a frozen dataclass, or raises
:class:`CommandError` whose message names what was wrong and what is expected;
:func:`render` writes a command the way SPP's spp-ctl sends it (``phy:0 nq 1``).
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

from dataclasses import dataclass, field
from typing import Final, Literal

from spp.components.vlan import VlanOp
from spp.lang.base import (
    COMPONENT_TYPES,
    CORE_MAX,
    PCP_MAX,
    QUEUE_MAX,
    VID_MAX,
    CommandError,
    Exit,
    Status,
    choice,
    component_type,
    direction,
    integer,
    mac,
    name,
    port_id,
    tokenize,
    wire_res,
)
from spp.ports.base import PortId

ProcessType = Literal["vf", "mirror"]
Direction = Literal["rx", "tx"]

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
VLAN_OPTIONS: Final = ("add_vlantag", "del_vlantag")
#: The commands of each process, in the order help and completion list them.
COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    "vf": ("status", "component", "port", "classifier_table", "exit"),
    "mirror": ("status", "component", "port", "exit"),
}


# -- the commands -------------------------------------------------------------


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
    #: The address as the user wrote it (rendered as given, the case kept, as SPP's spp-ctl does).
    spelled: str | None = field(default=None, compare=False)

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


# -- typed constructors (REST bodies and the parser share them) ---------------------


def component_start(process: ProcessType, name_: object, core: object, ctype: object) -> ComponentStart:
    """A checked ``component start`` (fields: ``name``, ``core``, ``type``)."""
    return ComponentStart(name(name_, field="name"), integer(core, "core id", 0, CORE_MAX, field="core"),
                          component_type(ctype, process, field="type"))


def vlan_op(operation: object, vid: object = 0, pcp: object = 0, *, field: str = "vlan") -> VlanOp | None:
    """A port's VLAN option: None for ``none``; ``add`` checks ``vid`` and ``pcp``."""
    op = choice(operation, "VLAN operation", ("add", "del", "none"), field=f"{field}.operation")
    if op == "none":
        return None
    if op == "del":
        return VlanOp("del")
    return VlanOp("add", integer(vid, "VLAN id", 0, VID_MAX, field=f"{field}.id"),
                  integer(pcp, "PCP", 0, PCP_MAX, field=f"{field}.pcp"))


def port_add(process: ProcessType, port: object, dir_: object, name_: object, vlan: VlanOp | None = None) -> PortAdd:
    """A checked ``port add`` (fields ``port``, ``dir``, ``name``; spp-mirror takes no VLAN option)."""
    cmd = PortAdd(port_id(port, field="port"), _direction(dir_), name(name_, field="name"), vlan)
    if vlan is not None and process != "vf":
        word = "add_vlantag" if vlan.operation == "add" else "del_vlantag"
        raise CommandError(f"VLAN option {word!r} is not supported by spp-{process}: expected "
                           f"{USAGE['port add (mirror)']}", "vlan", f"spp_{process} ports take no VLAN option")
    return cmd


def port_del(port: object, dir_: object, name_: object) -> PortDel:
    """A checked ``port del``."""
    return PortDel(port_id(port, field="port"), _direction(dir_), name(name_, field="name"))


def classifier_table(action: object, table_type: object, mac_address: object, port: object,
                     vlan: object = None) -> ClassifierTable:
    """A checked ``classifier_table`` (fields ``action``, ``type``, ``mac_address``, ``port``, ``vlan``)."""
    act = choice(action, "classifier_table action", ("add", "del"), field="action")
    kind = choice(table_type, "classifier_table type", ("mac", "vlan"), field="type")
    vid: int | None = None
    if kind == "vlan":
        if vlan is None:
            raise CommandError("classifier_table vlan: a VLAN id is required", "vlan", "required when type is 'vlan'")
        vid = integer(vlan, "VLAN id", 0, VID_MAX, field="vlan")
    address = mac(mac_address, allow_default=True, field="mac_address")
    return ClassifierTable("add" if act == "add" else "del", vid, None if address == "default" else address,
                           port_id(port, field="port"), str(mac_address))


def _direction(text: object) -> Direction:
    return "rx" if direction(text, field="dir") == "rx" else "tx"


def _arity(key: str, usage_key: str | None = None) -> CommandError:
    return CommandError(f"wrong number of arguments for '{key}': expected {USAGE[usage_key or key]}")


# -- the parser -----------------------------------------------------------------


def commands_listing(process: str) -> str:
    names = COMMANDS[process]
    return ", ".join(names[:-1]) + " or " + names[-1]


def parse(line: str, process: ProcessType = "vf") -> Command:
    """Parse one command of a ``process`` (``vf`` or ``mirror``); see the module docstring."""
    return parse_words(tokenize(line), process)


def parse_words(tokens: list[str], process: ProcessType = "vf") -> Command:
    """:func:`parse` for an already split line (``phy:0 nq 1`` already merged by :func:`tokenize`)."""
    if process not in COMPONENT_TYPES:
        raise ValueError(f"process type {process!r}: expected vf or mirror")
    if not tokens:
        raise CommandError(f"empty command: expected one of {commands_listing(process)}")
    head = tokens[0]
    if head in ("status", "exit"):
        if len(tokens) != 1:
            raise _arity(head)
        return Status() if head == "status" else Exit()
    if head == "component":
        return _component(tokens, process)
    if head == "port":
        return _port(tokens, process)
    if head == "classifier_table" and process == "vf":
        return _classifier(tokens)
    raise CommandError(f"unknown command {head!r} for spp-{process}: expected one of {commands_listing(process)}")


def _component(tokens: list[str], process: ProcessType) -> Command:
    sub = tokens[1] if len(tokens) > 1 else ""
    if sub == "start":
        if len(tokens) != 5:
            raise _arity("component start")
        return component_start(process, tokens[2], tokens[3], tokens[4])
    if sub == "stop":
        if len(tokens) != 3:
            raise _arity("component stop")
        return ComponentStop(name(tokens[2], field="name"))
    raise CommandError(f"unknown subcommand {'component ' + sub!r}: expected component start or component stop")


def _port(tokens: list[str], process: ProcessType) -> Command:
    sub = tokens[1] if len(tokens) > 1 else ""
    if sub not in ("add", "del"):
        raise CommandError(f"unknown subcommand {'port ' + sub!r}: expected port add or port del")
    key = f"port {sub}"
    usage = "port add (mirror)" if sub == "add" and process == "mirror" else key
    if len(tokens) < 5:
        raise _arity(key, usage)
    port, dir_, name_, rest = tokens[2], tokens[3], tokens[4], tokens[5:]
    if dir_ == "nq":  # "phy:0 nq X" whose X is no queue number
        integer(name_, "queue", 0, QUEUE_MAX)
    if sub == "del":
        if rest:
            raise _arity(key)
        return port_del(port, dir_, name_)
    if not rest:
        return port_add(process, port, dir_, name_)
    if process != "vf":
        port_id(port, field="port")
        raise CommandError(f"VLAN option {rest[0]!r} is not supported by spp-{process}: expected {USAGE[usage]}",
                           "vlan", f"spp_{process} ports take no VLAN option")
    if rest[0] == "add_vlantag":
        if len(rest) != 3:
            raise _arity(key)
        return port_add(process, port, dir_, name_, vlan_op("add", rest[1], rest[2]))
    if rest[0] == "del_vlantag":
        if len(rest) != 1:
            raise _arity(key)
        return port_add(process, port, dir_, name_, vlan_op("del"))
    raise CommandError(f"unknown VLAN option {rest[0]!r}: expected add_vlantag VID PCP or del_vlantag")


def _classifier(tokens: list[str]) -> Command:
    if len(tokens) < 3:
        raise _arity("classifier_table")
    action = choice(tokens[1], "classifier_table action", ("add", "del"), field="action")
    kind = choice(tokens[2], "classifier_table type", ("mac", "vlan"), field="type")
    if kind == "mac":
        if len(tokens) != 5:
            raise _arity("classifier_table")
        return classifier_table(action, kind, tokens[3], tokens[4])
    if len(tokens) != 6:
        raise _arity("classifier_table")
    return classifier_table(action, kind, tokens[4], tokens[5], tokens[3])


# -- the wire text ------------------------------------------------------------------


def render(cmd: Command) -> str:
    """The wire text of ``cmd``, as SPP's spp-ctl sends it (a queue as ``phy:0 nq 1``)."""
    if isinstance(cmd, ComponentStart):
        return f"component start {cmd.name} {cmd.core} {cmd.ctype}"
    if isinstance(cmd, ComponentStop):
        return f"component stop {cmd.name}"
    if isinstance(cmd, PortAdd):
        text = f"port add {wire_res(cmd.port)} {cmd.direction} {cmd.name}"
        if cmd.vlan is None or cmd.vlan.operation == "none":
            return text
        if cmd.vlan.operation == "add":
            return f"{text} add_vlantag {cmd.vlan.vid} {cmd.vlan.pcp}"
        return f"{text} del_vlantag"
    if isinstance(cmd, PortDel):
        return f"port del {wire_res(cmd.port)} {cmd.direction} {cmd.name}"
    if isinstance(cmd, ClassifierTable):
        m = cmd.spelled or ("default" if cmd.mac is None else cmd.mac)
        table = "mac" if cmd.vlan is None else f"vlan {cmd.vlan}"
        return f"classifier_table {cmd.action} {table} {m} {wire_res(cmd.port)}"
    return type(cmd).__name__.lower()
