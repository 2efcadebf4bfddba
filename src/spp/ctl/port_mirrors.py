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

from spp.ctl.controller import PRIMARY
from spp.ctl.errors import BadReply, CommandError, NoSuchObject
from spp.ctl.routes.deps import ControllerDep, no_content

router = APIRouter(prefix="/port_mirrors", tags=["port mirrors"])

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")]
PortUid = Annotated[str, Field(pattern=r"^[a-z]+:\d+(nq\d+)?$")]
Mac = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")]
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
    vlan_filter: Annotated[str, Field(pattern=r"^[0-9][0-9,-]*$")] | None = None
    src_mac: Mac | None = None
    dst_mac: Mac | None = None
    flow: FlowBody | None = None
    snaplen: Annotated[int, Field(ge=0)] = 0
    copy_mode: Literal["shallow", "deep"] = Field("shallow", alias="copy")  # BaseModel has a copy()

    def command(self) -> str:
        words = ["port_mirror", "add", self.name, self.source, self.direction, self.destination]
        if self.vlan_filter is not None:
            words += ["vlan", self.vlan_filter]
        if self.src_mac is not None:
            words += ["src_mac", self.src_mac]
        if self.dst_mac is not None:
            words += ["dst_mac", self.dst_mac]
        if self.flow is not None:
            words += ["flow", *self.flow.tokens()]
        if self.snaplen:
            words += ["snaplen", str(self.snaplen)]
        if self.copy_mode != "shallow":
            words += ["copy", self.copy_mode]
        return " ".join(words)


@router.get("")
async def list_port_mirrors(ctl: ControllerDep) -> list[dict[str, Any]]:
    """Every port mirror of the stack with ``stats`` {packets, filtered, nombuf, full, errors}."""
    reply = await ctl.send(PRIMARY, None, "port_mirror list")
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
        await ctl.send(PRIMARY, None, f"port_mirror del {name}")
    except CommandError as exc:
        if exc.message.startswith("no mirror "):
            raise NoSuchObject(exc.message) from None
        raise
    return no_content()
