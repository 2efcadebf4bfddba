"""Validate typed arguments and build the plain-text commands of the wire.

Every function here is pure: it either returns the exact command string to
send to a process, or raises :class:`~spp.ctl.errors.InvalidArgument` naming
the offending field.  The REST models reuse the ``check_*`` functions so that
both front ends accept exactly the same values.

Wire grammar (SPEC section 3)::

    status
    exit
    component start NAME CORE_ID TYPE
    component stop NAME
    port add RES_UID [nq Q] {rx|tx} NAME [add_vlantag VID PCP | del_vlantag]
    port del RES_UID [nq Q] {rx|tx} NAME
    classifier_table {add|del} mac {MAC|default} RES_UID
    classifier_table {add|del} vlan VID {MAC|default} RES_UID

and, to the primary::

    status
    clear
    exit
    port {add|del} RES_UID [nq Q]
    launch CLIENT_ID PROC_NAME JSON
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from spp import lang
from spp.ctl.errors import InvalidArgument

Direction = Literal["rx", "tx"]
VlanOperation = Literal["add", "del", "none"]
TableAction = Literal["add", "del"]
TableType = Literal["mac", "vlan"]

PORT_TYPES: Final = ("phy", "ring", "vhost", "pcap", "nullpmd", "tap", "memif")
"""Port types accepted in a resource id ``TYPE:N``."""

COMPONENT_TYPES: Final[Mapping[str, frozenset[str]]] = {
    "vf": frozenset({"forward", "merge", "classifier"}),
    "mirror": frozenset({"mirror"}),
}
"""Component types each secondary kind accepts; kinds not listed accept any."""

VLAN_ID_MAX: Final = 4095
VLAN_PCP_MAX: Final = 7
NAME_MAX_LEN: Final = 64

_PORT_RE: Final = re.compile(r"^(?P<type>[a-z]+):(?P<num>[0-9]{1,9})(?:nq(?P<queue>[0-9]{1,9}))?$")
_NAME_RE: Final = re.compile(r"^[\x21-\x7e]+$")
_INT_RE: Final = re.compile(r"^[0-9]{1,9}$")


@dataclass(frozen=True)
class VlanTag:
    """A VLAN option of ``port add``.

    ``operation`` ``"add"`` needs ``vid`` (0-4095) and ``pcp`` (0-7);
    ``"del"`` and ``"none"`` ignore them.
    """

    operation: VlanOperation
    vid: int = 0
    pcp: int = 0


# -- argument checks ---------------------------------------------------------


def check_int(field: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int within ``[low, high]``.

    Accepts an ``int`` (not a ``bool``) or a string of decimal digits such as
    ``"101"`` (SPP's CLI sends some numbers as strings).
    """
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise InvalidArgument(field, "must be an integer")
    if number < low or (high is not None and number > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        raise InvalidArgument(field, f"must be in range {bound}, got {number}")
    return number


def check_name(field: str, value: object) -> str:
    """Return ``value`` if it is a usable component/process name.

    A name is 1-64 visible ASCII characters: no whitespace, so it stays one
    token of the space-separated wire command.
    """
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > NAME_MAX_LEN:
        raise InvalidArgument(field, f"must be at most {NAME_MAX_LEN} characters")
    if not _NAME_RE.fullmatch(value):
        raise InvalidArgument(field, "must be visible ASCII characters without spaces")
    return value


def check_port(field: str, value: object) -> str:
    """Return the wire form of a resource id, e.g. ``"ring:0"``.

    Accepts ``TYPE:N`` with TYPE one of :data:`PORT_TYPES`, and the
    multi-queue form ``phy:NnqQ`` which becomes ``"phy:N nq Q"``.
    """
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    match = _PORT_RE.fullmatch(value)
    if match is None or match["type"] not in PORT_TYPES:
        raise InvalidArgument(
            field,
            f"must be TYPE:N with TYPE one of {', '.join(PORT_TYPES)} (or phy:NnqQ), got {value!r}",
        )
    uid = f"{match['type']}:{int(match['num'])}"
    if match["queue"] is None:
        return uid
    if match["type"] != "phy":
        raise InvalidArgument(field, f"only phy ports have queues, got {value!r}")
    return f"{uid} nq {int(match['queue'])}"


def check_mac(field: str, value: object) -> str:
    """Return ``value`` if it is ``"default"`` or a MAC ``XX:XX:XX:XX:XX:XX``.

    The address is passed on as given (case preserved).
    """
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be a string")
    try:
        lang.mac(value, allow_default=True)
    except lang.CommandError:
        raise InvalidArgument(field, f"must be a MAC address XX:XX:XX:XX:XX:XX or 'default', got {value!r}") from None
    return value


def check_choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        expected = " or ".join(f"'{c}'" for c in choices)
        raise InvalidArgument(field, f"must be {expected}")
    return value


def check_vlan_tag(tag: VlanTag) -> VlanTag:
    """Check the ranges of a :class:`VlanTag` and return it."""
    check_choice("vlan.operation", tag.operation, ("add", "del", "none"))
    if tag.operation == "add":
        check_int("vlan.id", tag.vid, 0, VLAN_ID_MAX)
        check_int("vlan.pcp", tag.pcp, 0, VLAN_PCP_MAX)
    return tag


def check_component_type(kind: str, value: object) -> str:
    """Return ``value`` if a ``kind`` secondary runs components of that type."""
    allowed = COMPONENT_TYPES.get(kind)
    if allowed is None:
        return check_name("type", value)
    return check_choice("type", value, tuple(sorted(allowed)))


# -- command builders --------------------------------------------------------


def status() -> str:
    """``status``: ask a process for its status (secondaries and primary)."""
    return "status"


def exit_process() -> str:
    """``exit``: ask a process to terminate."""
    return "exit"


def clear() -> str:
    """``clear``: reset the primary's port counters."""
    return "clear"


def component_start(kind: str, name: str, core: int, ctype: str) -> str:
    """``component start NAME CORE TYPE``.

    ``ctype`` must be a component type of ``kind`` (see
    :data:`COMPONENT_TYPES`).
    """
    name = check_name("name", name)
    core = check_int("core", core, 0)
    ctype = check_component_type(kind, ctype)
    return f"component start {name} {core} {ctype}"


def component_stop(name: str) -> str:
    """``component stop NAME``."""
    return f"component stop {check_name('name', name)}"


def port_add(port: str, direction: Direction, name: str, vlan: VlanTag | None = None) -> str:
    """``port add RES_UID [nq Q] DIR NAME [add_vlantag VID PCP | del_vlantag]``.

    ``vlan`` ``None`` or operation ``"none"`` adds no VLAN option.
    """
    uid = check_port("port", port)
    direction_ = check_choice("dir", direction, ("rx", "tx"))
    name = check_name("name", name)
    command = f"port add {uid} {direction_} {name}"
    if vlan is None:
        return command
    vlan = check_vlan_tag(vlan)
    if vlan.operation == "add":
        return f"{command} add_vlantag {vlan.vid} {vlan.pcp}"
    if vlan.operation == "del":
        return f"{command} del_vlantag"
    return command


def port_del(port: str, direction: Direction, name: str) -> str:
    """``port del RES_UID [nq Q] DIR NAME``."""
    uid = check_port("port", port)
    direction_ = check_choice("dir", direction, ("rx", "tx"))
    return f"port del {uid} {direction_} {check_name('name', name)}"


def classifier_table(
    action: TableAction,
    table_type: TableType,
    mac_address: str,
    port: str,
    vlan: int | str | None = None,
) -> str:
    """``classifier_table ACTION mac MAC PORT`` or ``... vlan VID MAC PORT``.

    ``vlan`` is required (0-4095, int or decimal string) when ``table_type``
    is ``"vlan"`` and ignored otherwise.
    """
    action_ = check_choice("action", action, ("add", "del"))
    type_ = check_choice("type", table_type, ("mac", "vlan"))
    mac = check_mac("mac_address", mac_address)
    uid = check_port("port", port)
    if type_ == "mac":
        return f"classifier_table {action_} mac {mac} {uid}"
    if vlan is None:
        raise InvalidArgument("vlan", "required when type is 'vlan'")
    vid = check_int("vlan", vlan, 0, VLAN_ID_MAX)
    return f"classifier_table {action_} vlan {vid} {mac} {uid}"


def primary_port(action: TableAction, port: str) -> str:
    """``port add RES_UID`` / ``port del RES_UID`` to the primary."""
    action_ = check_choice("action", action, ("add", "del"))
    return f"port {action_} {check_port('port', port)}"


def launch(client_id: int, proc_name: str, body: Mapping[str, Any]) -> str:
    """``launch CLIENT_ID PROC_NAME JSON`` to the primary.

    ``body`` is the whole REST request body; it is sent as compact JSON on the
    same line (JSON text never contains a raw newline).
    """
    cid = check_int("client_id", client_id, 0)
    name = check_name("proc_name", proc_name)
    try:
        text = json.dumps(dict(body), separators=(",", ":"), sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("body", f"not serialisable as JSON: {exc}") from exc
    return f"launch {cid} {name} {text}"
