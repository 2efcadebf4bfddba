"""``/ui``: the live topology page of spp-ctl (not under ``/v1``: it is no API).

* ``GET /ui`` → the page: one HTML document with its script and style inlined
  (every asset ships in the package; nothing is loaded from elsewhere);
* ``GET /ui/events`` → ``text/event-stream``: one JSON snapshot
  (:mod:`spp.ctl.ui.snapshot`) per second, rates computed by spp-ctl;
* ``GET /ui/snapshot`` → the same snapshot once, as ``application/json``.

With ``spp-ctl --token``, these three accept the token as ``?token=TOKEN`` as
well as the ``Authorization`` header, because a browser can set no header on a
page load nor on an ``EventSource`` (see :mod:`spp.ctl.api`).  All streams share
one poller (:class:`~spp.ctl.ui.hub.UiHub`).
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from spp.ctl.ui.hub import Subscription, UiHub

router = APIRouter(tags=["ui"], include_in_schema=False)

_NO_STORE = {"Cache-Control": "no-store"}


def get_hub(request: Request) -> UiHub:
    """The app's poller, made on first use."""
    hub: UiHub | None = getattr(request.app.state, "ui_hub", None)
    if hub is None:
        hub = request.app.state.ui_hub = UiHub(request.app.state.controller)
    return hub


@functools.cache
def page() -> str:
    """``index.html`` with ``style.css`` and ``app.js`` inlined."""
    static = resources.files("spp.ctl.ui") / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    style = (static / "style.css").read_text(encoding="utf-8")
    script = (static / "app.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    return html.replace("/*STYLE*/", style).replace("/*SCRIPT*/", script)


class _EventStream(StreamingResponse):
    """A stream that frees its subscription however it ends (client gone, server stopping)."""

    def __init__(self, hub: UiHub, sub: Subscription) -> None:
        super().__init__(hub.events(sub), media_type="text/event-stream",
                         headers={**_NO_STORE, "X-Accel-Buffering": "no"})
        self.sub = sub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.sub.close()


@router.get("/ui", response_class=HTMLResponse)
async def ui_page() -> HTMLResponse:
    """The topology page."""
    return HTMLResponse(page(), headers=_NO_STORE)


@router.get("/ui/events")
async def ui_events(request: Request) -> Response:
    """Server-sent events: ``data: {snapshot}`` every interval."""
    hub = get_hub(request)
    return _EventStream(hub, hub.subscribe())


@router.get("/ui/snapshot")
async def ui_snapshot(request: Request) -> Response:
    """One snapshot (the poller's newest, or polled now)."""
    data = await get_hub(request).snapshot()
    return Response(data, media_type="application/json", headers=_NO_STORE)
