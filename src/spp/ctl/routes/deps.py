"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from spp.ctl.controller import Controller


def get_controller(request: Request) -> Controller:
    """The :class:`Controller` the app was created with."""
    controller: Controller = request.app.state.controller
    return controller


ControllerDep = Annotated[Controller, Depends(get_controller)]


def no_content() -> Response:
    """The reply to every successful write: 204 with no body."""
    return Response(status_code=204)
