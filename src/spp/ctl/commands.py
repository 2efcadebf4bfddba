"""The wire commands spp-ctl sends, built from typed arguments by :mod:`spp.lang`.

Every function here is pure: it returns the exact command text :mod:`spp.lang`
renders, or raises :class:`~spp.ctl.errors.InvalidArgument` naming the offending
field with :mod:`spp.lang`'s reason (the same check the process makes, made before
anything is sent).  The REST models reuse the ``check_*`` adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from spp import lang
from spp.ctl.errors import InvalidArgument
from spp.lang import vf

Direction = Literal["rx", "tx"]
VlanOperation = Literal["add", "del", "none"]
TableAction = Literal["add", "del"]
TableType = Literal["mac", "vlan"]

T = TypeVar("T")

#: The largest client id (SPP's CLI and the primary's ``launch`` agree).
CLIENT_ID_MAX: Final = 255


@dataclass(frozen=True)
class VlanTag:
    """A VLAN option of ``port add``: ``add`` needs ``vid`` (0-4095) and ``pcp`` (0-7)."""

    operation: VlanOperation
    vid: int = 0
    pcp: int = 0


def checked(build: Callable[[], T]) -> T:
    """Run a :mod:`spp.lang` constructor; its :class:`~spp.lang.CommandError` becomes :class:`InvalidArgument`."""
    try:
        return build()
    except lang.CommandError as exc:
        raise InvalidArgument(exc.field or "body", exc.reason) from None


# -- argument checks (REST models) ------------------------------------------------


def check_int(field: str, value: object, low: int, high: int) -> int:
    """``value`` (an int or a string of digits) within ``[low, high]``."""
    return checked(lambda: lang.integer(value, field, low, high, field=field))


def check_name(field: str, value: object) -> str:
    """A component name: 1-64 visible ASCII characters (one token of the wire)."""
    return checked(lambda: lang.name(value, field=field))


def check_port(field: str, value: object) -> str:
    """The wire form of a resource id (``phy:0nq1`` → ``phy:0 nq 1``)."""
    return lang.wire_res(checked(lambda: lang.port_id(value, field=field)))


def check_mac(field: str, value: object) -> str:
    """``value`` if it is ``default`` or a MAC ``XX:XX:XX:XX:XX:XX`` (passed on as given)."""
    checked(lambda: lang.mac(value, allow_default=True, field=field))
    assert isinstance(value, str)
    return value


# -- command builders ----------------------------------------------------------------


def status() -> str:
    """``status``: ask a process for its status (secondaries and primary)."""
    return lang.render(lang.Status())


def exit_process() -> str:
    """``exit``: ask a process to terminate."""
    return lang.render(lang.Exit())


def clear() -> str:
    """``clear``: reset the primary's port counters."""
    return lang.render(lang.Clear())


def component_start(kind: str, name: str, core: int, ctype: str) -> str:
    """``component start NAME CORE TYPE`` to a ``kind`` (vf or mirror) secondary."""
    if kind not in lang.COMPONENT_TYPES:
        raise InvalidArgument("type", f"spp_{kind} runs no components")
    process: vf.ProcessType = "vf" if kind == "vf" else "mirror"
    return vf.render(checked(lambda: vf.component_start(process, name, core, ctype)))


def component_stop(name: str) -> str:
    """``component stop NAME``."""
    return vf.render(vf.ComponentStop(check_name("name", name)))


def vlan_op(tag: VlanTag | None) -> Any:
    """The :class:`~spp.components.vlan.VlanOp` of a REST VLAN option (None: no option)."""
    if tag is None:
        return None
    return checked(lambda: vf.vlan_op(tag.operation, tag.vid, tag.pcp))


def port_add(port: str, direction: Direction, name: str, vlan: VlanTag | None = None, kind: str = "vf") -> str:
    """``port add RES_UID [nq Q] DIR NAME [add_vlantag VID PCP | del_vlantag]``."""
    process: vf.ProcessType = "mirror" if kind == "mirror" else "vf"
    return vf.render(checked(lambda: vf.port_add(process, port, direction, name, vlan_op(vlan))))


def port_del(port: str, direction: Direction, name: str) -> str:
    """``port del RES_UID [nq Q] DIR NAME``."""
    return vf.render(checked(lambda: vf.port_del(port, direction, name)))


def classifier_table(action: TableAction, table_type: TableType, mac_address: str, port: str,
                     vlan: int | str | None = None) -> str:
    """``classifier_table ACTION mac MAC PORT`` or ``... vlan VID MAC PORT``."""
    return vf.render(checked(lambda: vf.classifier_table(action, table_type, mac_address, port, vlan)))


def primary_port(action: TableAction, port: str) -> str:
    """``port add RES_UID`` / ``port del RES_UID`` to the primary (SPP's words)."""
    if action not in ("add", "del"):
        raise InvalidArgument("action", "must be 'add' or 'del'")
    pid = checked(lambda: lang.port_id(port, field="port"))
    return lang.render(lang.AddPort(pid, legacy=True) if action == "add" else lang.DelPort(pid, legacy=True))


def launch(client_id: int, proc_name: str, body: Mapping[str, Any]) -> str:
    """``launch CLIENT_ID PROC_NAME JSON`` to the primary (``body`` is the whole REST body)."""
    cid = check_int("client_id", client_id, 0, CLIENT_ID_MAX)
    name = check_name("proc_name", proc_name)
    try:
        return lang.render(lang.Launch(cid, name, dict(body)))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument("body", f"not serialisable as JSON: {exc}") from exc
