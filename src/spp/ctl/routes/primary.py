"""``/v1/primary``: status, counters, ports, exit and launching secondaries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from spp.ctl.models import LaunchBody, PrimaryPortBody
from spp.ctl.routes.deps import ControllerDep, no_content

router = APIRouter(prefix="/primary", tags=["primary"])


@router.get("/status")
async def get_status(ctl: ControllerDep) -> dict[str, Any]:
    """The ``info`` object of the primary's ``status`` reply, as is."""
    return await ctl.primary_status()


@router.delete("/status", status_code=204, response_class=Response)
async def clear_status(ctl: ControllerDep) -> Response:
    """Reset the primary's counters (``clear``)."""
    await ctl.primary_clear()
    return no_content()


@router.put("/ports", status_code=204, response_class=Response)
async def put_port(ctl: ControllerDep, body: PrimaryPortBody) -> Response:
    """``port add PORT`` or ``port del PORT``."""
    await ctl.primary_port(body.action, body.port)
    return no_content()


@router.delete("", status_code=204, response_class=Response)
async def exit_primary(ctl: ControllerDep) -> Response:
    """Ask the primary to exit (``exit``)."""
    await ctl.primary_exit()
    return no_content()


@router.put("/launch", status_code=204, response_class=Response)
async def launch(ctl: ControllerDep, body: LaunchBody) -> Response:
    """Ask the primary to start a secondary: ``launch CLIENT_ID PROC_NAME JSON``.

    JSON is the whole body, compact, on one line.
    """
    await ctl.launch(body.client_id, body.proc_name, body.model_dump(mode="json"))
    return no_content()
