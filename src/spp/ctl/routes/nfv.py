"""``/v1/nfvs/{client_id}``, ``/v1/pcaps/{client_id}`` and the primary's forwarder routes, as SPP's spp-ctl.

Bodies are checked with :mod:`spp.lang` (the same validators the processes use) and
the wire text is rendered by it: ``PUT /v1/nfvs/1/patches {"src":"ring:0","dst":"ring:1"}``
sends ``patch ring:0 ring:1``.  A bad field is ``400 invalid body: field 'src': ...``;
an error the process answers is ``400 command error: ...``; an unknown id ``404``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from spp import lang
from spp.ctl.errors import BadReply
from spp.ctl.routes.deps import ControllerDep, no_content

nfv_router = APIRouter(prefix="/nfvs", tags=["spp_nfv"])
pcap_router = APIRouter(prefix="/pcaps", tags=["spp_pcap"])
primary_router = APIRouter(prefix="/primary", tags=["primary"])

_WRITE: dict[str, Any] = {"status_code": 204, "response_class": Response}


def _port(value: object) -> str:
    try:
        return str(lang.port_id(value))
    except lang.CommandError as e:
        raise PydanticCustomError("spp_invalid", e.reason) from None


LangPort = Annotated[str, BeforeValidator(_port), Field(description="Resource id TYPE:N, e.g. ring:0 or phy:1.")]


class ForwardBody(BaseModel):
    """``{"action": "start"|"stop"}``."""

    action: Literal["start", "stop"]


class PortBody(BaseModel):
    """``{"action": "add"|"del", "port": "ring:0"}``."""

    action: Literal["add", "del"]
    port: LangPort


class PatchBody(BaseModel):
    """``{"src": "ring:0", "dst": "ring:1"}``."""

    src: LangPort
    dst: LangPort


def _port_cmd(body: PortBody) -> lang.Command:
    pid = lang.port_id(body.port)
    return lang.AddPort(pid) if body.action == "add" else lang.DelPort(pid)


def _patch_cmd(body: PatchBody) -> lang.Command:
    return lang.Patch(lang.port_id(body.src, "src"), lang.port_id(body.dst, "dst"))


# -- spp_nfv ----------------------------------------------------------------------


@nfv_router.get("/{client_id}")
async def nfv_status(ctl: ControllerDep, client_id: int) -> dict[str, Any]:
    """``{"client-id", "status": "running"|"idling", "ports": [...], "patches": [{"src","dst"}]}``."""
    reply = await ctl.send("nfv", client_id, lang.render(lang.Status()))
    reply.pop("results", None)
    return reply


@nfv_router.delete("/{client_id}", **_WRITE)
async def nfv_exit(ctl: ControllerDep, client_id: int) -> Response:
    """``exit``."""
    await ctl.exit_process("nfv", client_id)
    return no_content()


@nfv_router.put("/{client_id}/forward", **_WRITE)
async def nfv_forward(ctl: ControllerDep, client_id: int, body: ForwardBody) -> Response:
    """``forward`` or ``stop``."""
    cmd: lang.Command = lang.Forward() if body.action == "start" else lang.Stop()
    await ctl.send("nfv", client_id, lang.render(cmd))
    return no_content()


@nfv_router.put("/{client_id}/ports", **_WRITE)
async def nfv_port(ctl: ControllerDep, client_id: int, body: PortBody) -> Response:
    """``add PORT`` or ``del PORT``."""
    await ctl.send("nfv", client_id, lang.render(_port_cmd(body)))
    return no_content()


@nfv_router.put("/{client_id}/patches", **_WRITE)
async def nfv_patch(ctl: ControllerDep, client_id: int, body: PatchBody) -> Response:
    """``patch SRC DST``."""
    await ctl.send("nfv", client_id, lang.render(_patch_cmd(body)))
    return no_content()


@nfv_router.delete("/{client_id}/patches", **_WRITE)
async def nfv_patch_reset(ctl: ControllerDep, client_id: int) -> Response:
    """``patch reset``."""
    await ctl.send("nfv", client_id, lang.render(lang.PatchReset()))
    return no_content()


# -- spp_pcap ---------------------------------------------------------------------


@pcap_router.get("/{client_id}")
async def pcap_status(ctl: ControllerDep, client_id: int) -> dict[str, Any]:
    """The ``info`` of spp-pcap's status: ``client-id``, ``status``, ``core`` (receive/write roles)."""
    reply = await ctl.send("pcap", client_id, lang.render(lang.Status()))
    info = reply.get("info")
    if not isinstance(info, dict):
        raise BadReply(f"pcap {client_id}: status reply has no 'info' object")
    return info


@pcap_router.put("/{client_id}/capture", **_WRITE)
async def pcap_capture(ctl: ControllerDep, client_id: int, body: ForwardBody) -> Response:
    """``start`` or ``stop``."""
    cmd: lang.Command = lang.Start() if body.action == "start" else lang.Stop()
    await ctl.send("pcap", client_id, lang.render(cmd))
    return no_content()


@pcap_router.delete("/{client_id}", **_WRITE)
async def pcap_exit(ctl: ControllerDep, client_id: int) -> Response:
    """``exit``."""
    await ctl.exit_process("pcap", client_id)
    return no_content()


# -- the primary's forwarder (status, ports, launch and exit are in routes/primary.py) ---------


@primary_router.put("/forward", **_WRITE)
async def primary_forward(ctl: ControllerDep, body: ForwardBody) -> Response:
    """``forward`` or ``stop`` to the primary's forwarder."""
    cmd: lang.Command = lang.Forward() if body.action == "start" else lang.Stop()
    await ctl.send("primary", None, lang.render(cmd))
    return no_content()


@primary_router.put("/patches", **_WRITE)
async def primary_patch(ctl: ControllerDep, body: PatchBody) -> Response:
    """``patch SRC DST`` to the primary's forwarder."""
    await ctl.send("primary", None, lang.render(_patch_cmd(body)))
    return no_content()


@primary_router.delete("/patches", **_WRITE)
async def primary_patch_reset(ctl: ControllerDep) -> Response:
    """``patch reset`` to the primary's forwarder."""
    await ctl.send("primary", None, lang.render(lang.PatchReset()))
    return no_content()
