"""The REST API of spp-ctl (FastAPI), SPEC section 5.

This module is the only place where core errors become HTTP:

- 204, empty body: every successful write;
- 400, text body: ``invalid body: field 'dir': must be 'rx' or 'tx'``
  (malformed JSON, missing field, wrong type or value),
  ``invalid path: parameter 'client_id': must be an integer``,
  ``invalid argument: field 'name': ...`` (e.g. a component name in the path),
  ``command error: <message>`` (the process answered with an error);
- 401: ``--token`` given and no ``Authorization: Bearer TOKEN`` (the topology
  page's ``GET /ui...`` may give it as ``?token=TOKEN`` instead);
- 404: no such process (or port mirror), or unknown path;
- 413: a request body over 1 MiB (refused before it is read whole);
- 502: the process answered something that is not the expected reply;
- 503: the process did not answer in time, or its connection went away.

Error bodies are always ``text/plain``, never tracebacks.  Request bodies are
parsed as JSON whatever their ``Content-Type`` (as SPP's spp-ctl does).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spp.ctl.controller import Controller
from spp.ctl.docs import is_public
from spp.ctl.errors import (
    BadReply,
    CommandError,
    CtlError,
    InvalidArgument,
    NoSuchObject,
    NoSuchProcess,
    ProcessUnavailable,
)
from spp.ctl.routes import default_routers, ui

LOG = logging.getLogger(__name__)

API_PREFIX = "/v1"


def create_app(
    controller: Controller,
    *,
    token: str | None = None,
    routers: Iterable[APIRouter] | None = None,
) -> FastAPI:
    """The REST application relaying to ``controller``.

    ``routers`` (default :func:`spp.ctl.routes.default_routers`) are mounted
    under ``/v1``.  With ``token``, every request needs
    ``Authorization: Bearer <token>``.
    """
    app = FastAPI(
        title="spp-ctl",
        description="REST API of the Soft Patch Panel controller.",
        version="1",
        docs_url=None,  # spp.ctl.docs serves them with bundled assets
        redoc_url=None,
    )
    app.state.controller = controller
    for router in default_routers() if routers is None else routers:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(ui.router)  # the topology page, /ui (spp.ctl.routes.ui)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(CtlError, _ctl_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(_RequestGuard, token=token)
    from spp.ctl import docs, metrics

    docs.install(app, token=token is not None)
    metrics.install(app)
    return app


# -- middleware --------------------------------------------------------------


class _RequestGuard:
    """Checks the bearer token, and marks request bodies as JSON."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):  # the API's pages and description: no token
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        if self.token is not None and not self._authorized(headers) and not self._page_token(scope):
            LOG.warning("%s %s: refused, bad or missing token", scope["method"], scope["path"])
            response = PlainTextResponse(
                "unauthorized: missing or invalid 'Authorization: Bearer' token"
                + (" (or ?token=TOKEN in the page's address)" if scope["path"].startswith("/ui") else ""),
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = dict(scope, headers=headers)
        length = dict(headers).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            await _too_large(scope, receive, send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:  # stop reading; the app sees an empty, ended body
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":  # whatever the app answered: 413
                await _too_large(scope, receive, send)

        await self.app(scope, limited_receive, guarded_send)

    def _authorized(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        assert self.token is not None
        for key, value in headers:
            if key == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), self.token):
                    return True
        return False

    def _page_token(self, scope: Scope) -> bool:
        """``?token=`` on ``GET /ui...``: a browser sets no header on a page load or an EventSource."""
        assert self.token is not None
        path: str = scope["path"]
        if scope["method"] != "GET" or not (path == "/ui" or path.startswith("/ui/")):
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), errors="replace")
        return any(hmac.compare_digest(value.encode(), self.token) for value in query.get("token", []))


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    LOG.info("%s %s -> 413 body over %d bytes", scope["method"], scope["path"], MAX_BODY_BYTES)
    response = PlainTextResponse(f"request body too large: at most {MAX_BODY_BYTES} bytes", status_code=413)
    await response(scope, receive, send)


# -- error mapping -----------------------------------------------------------


def _text(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return PlainTextResponse(message, status_code=status, headers=headers)


async def _ctl_error(request: Request, exc: Exception) -> Response:
    status, message = ctl_error_status(exc)
    LOG.info("%s %s -> %d %s", request.method, request.url.path, status, message)
    return _text(status, message)


def ctl_error_status(exc: BaseException) -> tuple[int, str]:
    """HTTP status and text body for a core error."""
    if isinstance(exc, CommandError):
        return 400, f"command error: {exc.message}"
    if isinstance(exc, InvalidArgument):
        return 400, f"invalid argument: {exc}"
    if isinstance(exc, NoSuchProcess | NoSuchObject):
        return 404, str(exc)
    if isinstance(exc, ProcessUnavailable):
        return 503, f"process unavailable: {exc}"
    if isinstance(exc, BadReply):
        return 502, f"bad reply from process: {exc}"
    return 500, f"internal error: {exc}"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = f"not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method not allowed: {request.method} {request.url.path}"
    else:
        message = str(exc.detail)
    return _text(exc.status_code, message, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message = format_validation_errors(exc.errors())
    LOG.info("%s %s -> 400 %s", request.method, request.url.path, message)
    return _text(400, message)


async def _internal_error(request: Request, exc: Exception) -> Response:
    LOG.error("%s %s: internal error", request.method, request.url.path, exc_info=exc)
    return _text(500, "internal error (see spp-ctl log)")


PATTERN_WORDS: dict[str, str] = {
    r"^[A-Za-z0-9_.-]{1,32}$": "must be 1 to 32 letters, digits, '_', '.' or '-'",
    r"^[a-z]+:\d+(nq\d+)?$": "must be a port TYPE:N, e.g. ring:0, phy:1 or phy:0nq1",
    r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$": "must be a MAC address XX:XX:XX:XX:XX:XX (hex digits)",
    r"^[A-Za-z0-9.:/*_-]{1,64}$": "must be 1 to 64 letters, digits or '.', ':', '/', '*', '_', '-'",
    r"^[0-9][0-9,-]*$": "must be VLAN ids and ranges, e.g. 9,18-27",
}
"""What each ``pattern`` of the request models accepts, in words (a pattern is never shown)."""

MAX_BODY_BYTES = 1024 * 1024
"""A request body larger than this is refused with 413 before it is read whole."""

_TYPE_MESSAGES = {
    "missing": "required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be a string",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
}


def format_validation_errors(errors: Sequence[Any]) -> str:
    """One line naming every offending field, grouped by where it is.

    E.g. ``invalid body: field 'dir': must be 'rx' or 'tx'`` or
    ``invalid body: malformed JSON: Expecting value``.
    """
    groups: dict[str, list[str]] = {}
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        source = loc[0] if loc else "request"
        err_type = error.get("type", "")
        ctx = error.get("ctx") or {}
        if err_type == "json_invalid":
            groups.setdefault(source, []).append(f"malformed JSON: {ctx.get('error', 'decode error')}")
            continue
        if err_type == "literal_error" and "expected" in ctx:
            text = f"must be {ctx['expected']}"
        elif err_type == "string_pattern_mismatch":
            text = PATTERN_WORDS.get(str(ctx.get("pattern")), "is not in an accepted form")
        elif err_type in _TYPE_MESSAGES:
            text = _TYPE_MESSAGES[err_type]
        else:
            text = str(error.get("msg", "invalid"))
            text = text.removeprefix("Value error, ")
        field = ".".join(loc[1:])
        if field:
            noun = "parameter" if source in ("path", "query", "header") else "field"
            text = f"{noun} '{field}': {text}"
        elif source == "body" and err_type == "missing":
            text = "a JSON object is required"
        groups.setdefault(source, []).append(text)
    return "; ".join(f"invalid {source}: " + "; ".join(texts) for source, texts in groups.items())
