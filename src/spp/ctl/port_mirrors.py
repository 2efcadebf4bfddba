"""``/v1/port_mirrors``: port mirrors (docs/mirroring.md), relayed to the primary.

The mirror registry is shared by every process of a stack, so spp-ctl sends the
``port_mirror`` wire command to the primary, which edits it; the processes that own
the source ports attach the mirror.

* ``GET /v1/port_mirrors`` → the list, each with its ``stats``;
* ``POST /v1/port_mirrors`` with :class:`PortMirrorBody` → 204;
* ``DELETE /v1/port_mirrors/{name}`` → 204 (404 if there is no such mirror).

Bodies are checked here (400 ``invalid body: ...``) so that no value can smuggle extra
words into the command; the primary checks the rest (400 ``command error: ...``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from spp import lang
from spp.ctl.commands import checked
from spp.ctl.controller import PRIMARY
from spp.ctl.errors import BadReply, CommandError, NoSuchObject
from spp.ctl.models import lang_field
from spp.ctl.routes.deps import ControllerDep, no_content
from spp.lang import port_mirror

router = APIRouter(prefix="/port_mirrors", tags=["port mirrors"])

Name = Annotated[str, lang_field(port_mirror.mirror_name), Field(description="1 to 32 letters, digits, _ . -")]
PortUid = Annotated[str, lang_field(lambda v: lang.port_id(v, field="port")),
                    Field(description="A port TYPE:N, e.g. ring:0, phy:1 or phy:0nq1.")]
Mac = Annotated[str, lang_field(lambda v: lang.mac(v, field="mac")), Field(description="XX:XX:XX:XX:XX:XX")]
Word = Annotated[str, Field(pattern=r"^[A-Za-z0-9.:/*_-]{1,64}$")]


class FlowBody(BaseModel):
    """An IPv4 5-tuple; a missing field or ``null`` matches anything."""

    model_config = ConfigDict(extra="forbid")
    proto: Word | int | None = None
    src: Word | None = None
    sport: Annotated[int, Field(ge=0, le=65535)] | None = None
    dst: Word | None = None
    dport: Annotated[int, Field(ge=0, le=65535)] | None = None

    def tokens(self) -> list[str]:
        return ["*" if v is None else str(v) for v in (self.proto, self.src, self.sport, self.dst, self.dport)]


class PortMirrorBody(BaseModel):
    """``POST /v1/port_mirrors`` (TaaS-like: ``vlan_filter`` is ``"9,18-27"``)."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    source: PortUid
    destination: PortUid
    direction: Literal["rx", "tx", "both"] = "both"
    vlan_filter: Annotated[str, lang_field(port_mirror.vlan_ranges)] | None = None
    src_mac: Mac | None = None
    dst_mac: Mac | None = None
    flow: FlowBody | None = None
    snaplen: Annotated[int, Field(ge=0)] = 0
    copy_mode: Literal["shallow", "deep"] = Field("shallow", alias="copy")  # BaseModel has a copy()

    def command(self) -> str:
        """The ``port_mirror add`` wire command (:mod:`spp.lang.port_mirror` renders it)."""
        flow = self.flow.tokens() if self.flow is not None else None
        cmd = checked(lambda: port_mirror.port_mirror_add(
            self.name, self.source, self.direction, self.destination, vlan=self.vlan_filter, src_mac=self.src_mac,
            dst_mac=self.dst_mac, snaplen=self.snaplen, copy=self.copy_mode,
            flow=None if flow is None else (flow[0], flow[1], flow[2], flow[3], flow[4])))
        return port_mirror.render(cmd)


@router.get("")
async def list_port_mirrors(ctl: ControllerDep) -> list[dict[str, Any]]:
    """Every port mirror of the stack with ``stats`` {packets, filtered, nombuf, full, errors}."""
    reply = await ctl.send(PRIMARY, None, port_mirror.render(port_mirror.PortMirrorList()))
    info = reply.get("info")
    mirrors = info.get("port_mirrors") if isinstance(info, dict) else None
    if not isinstance(mirrors, list):
        raise BadReply("primary: 'port_mirror list' reply has no 'info.port_mirrors' list")
    return mirrors


@router.post("", status_code=204, response_class=Response)
async def create_port_mirror(ctl: ControllerDep, body: PortMirrorBody) -> Response:
    """Register a mirror (``port_mirror add ...`` to the primary)."""
    await ctl.send(PRIMARY, None, body.command())
    return no_content()


@router.delete("/{name}", status_code=204, response_class=Response)
async def delete_port_mirror(ctl: ControllerDep, name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
                             ) -> Response:
    """Remove a mirror (``port_mirror del NAME``); 404 if there is none of that name."""
    try:
        await ctl.send(PRIMARY, None, port_mirror.render(port_mirror.PortMirrorDel(name)))
    except CommandError as exc:
        if exc.message.startswith("no mirror "):
            raise NoSuchObject(exc.message) from None
        raise
    return no_content()
