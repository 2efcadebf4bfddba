"""``/v1/vfs/{client_id}`` and ``/v1/mirrors/{client_id}``: the secondaries.

Both families share their routes; vfs add ``classifier_table`` and VLAN
options on ports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from spp.ctl.models import (
    ClassifierBody,
    MirrorComponentBody,
    MirrorPortBody,
    VfComponentBody,
    VfPortBody,
)
from spp.ctl.routes.deps import ControllerDep, no_content

vf_router = APIRouter(prefix="/vfs", tags=["spp_vf"])
mirror_router = APIRouter(prefix="/mirrors", tags=["spp_mirror"])

_WRITE: dict[str, Any] = {"status_code": 204, "response_class": Response}


# -- spp_vf --------------------------------------------------------------------


@vf_router.get("/{client_id}")
async def vf_status(ctl: ControllerDep, client_id: int) -> dict[str, Any]:
    """``{"client-id","ports","master-lcore","components","classifier_table"}``."""
    return await ctl.status("vf", client_id)


@vf_router.delete("/{client_id}", **_WRITE)
async def vf_exit(ctl: ControllerDep, client_id: int) -> Response:
    """Ask spp_vf to exit."""
    await ctl.exit_process("vf", client_id)
    return no_content()


@vf_router.post("/{client_id}/components", **_WRITE)
async def vf_start_component(ctl: ControllerDep, client_id: int, body: VfComponentBody) -> Response:
    """``component start NAME CORE TYPE``."""
    await ctl.start_component("vf", client_id, body.name, body.core, body.type)
    return no_content()


@vf_router.delete("/{client_id}/components/{name}", **_WRITE)
async def vf_stop_component(ctl: ControllerDep, client_id: int, name: str) -> Response:
    """``component stop NAME``."""
    await ctl.stop_component("vf", client_id, name)
    return no_content()


@vf_router.put("/{client_id}/components/{name}/ports", **_WRITE)
async def vf_port(ctl: ControllerDep, client_id: int, name: str, body: VfPortBody) -> Response:
    """``port add PORT DIR NAME [add_vlantag VID PCP | del_vlantag]`` or ``port del``."""
    if body.action == "attach":
        tag = body.vlan.tag() if body.vlan is not None else None
        await ctl.attach_port("vf", client_id, name=name, port=body.port, direction=body.dir, vlan=tag)
    else:
        await ctl.detach_port("vf", client_id, name=name, port=body.port, direction=body.dir)
    return no_content()


@vf_router.put("/{client_id}/classifier_table", **_WRITE)
async def vf_classifier_table(ctl: ControllerDep, client_id: int, body: ClassifierBody) -> Response:
    """``classifier_table ACTION mac MAC PORT`` / ``... vlan VID MAC PORT``."""
    await ctl.classifier_table(
        client_id,
        action=body.action,
        table_type=body.type,
        mac_address=body.mac_address,
        port=body.port,
        vlan=body.vlan,
    )
    return no_content()


# -- spp_mirror ------------------------------------------------------------------


@mirror_router.get("/{client_id}")
async def mirror_status(ctl: ControllerDep, client_id: int) -> dict[str, Any]:
    """``{"client-id","ports","master-lcore","components"}``."""
    return await ctl.status("mirror", client_id)


@mirror_router.delete("/{client_id}", **_WRITE)
async def mirror_exit(ctl: ControllerDep, client_id: int) -> Response:
    """Ask spp_mirror to exit."""
    await ctl.exit_process("mirror", client_id)
    return no_content()


@mirror_router.post("/{client_id}/components", **_WRITE)
async def mirror_start_component(ctl: ControllerDep, client_id: int, body: MirrorComponentBody) -> Response:
    """``component start NAME CORE mirror``."""
    await ctl.start_component("mirror", client_id, body.name, body.core, body.type)
    return no_content()


@mirror_router.delete("/{client_id}/components/{name}", **_WRITE)
async def mirror_stop_component(ctl: ControllerDep, client_id: int, name: str) -> Response:
    """``component stop NAME``."""
    await ctl.stop_component("mirror", client_id, name)
    return no_content()


@mirror_router.put("/{client_id}/components/{name}/ports", **_WRITE)
async def mirror_port(ctl: ControllerDep, client_id: int, name: str, body: MirrorPortBody) -> Response:
    """``port add PORT DIR NAME`` or ``port del PORT DIR NAME``."""
    if body.action == "attach":
        await ctl.attach_port("mirror", client_id, name=name, port=body.port, direction=body.dir)
    else:
        await ctl.detach_port("mirror", client_id, name=name, port=body.port, direction=body.dir)
    return no_content()
