"""``/docs`` (Swagger UI), ``/redoc`` and an ``openapi.json`` that says what spp-ctl really answers.

* The pages load their scripts from spp-ctl itself (``/docs/static``): the assets
  ship in the ``fastapi-offline`` wheel (Swagger UI 5 and ReDoc 2 bundles), so the
  pages work on hosts without Internet access.
* ``openapi.json`` is FastAPI's document corrected: the 200 reply of each JSON route
  gets its model from :data:`spp.ctl.schemas.ROUTE_MODELS`; FastAPI's 422 JSON
  validation error (spp-ctl never sends one) is replaced by the text/plain errors of
  :mod:`spp.ctl.api` each route can give: 400, 401 (with ``--token``), 404, 413 (a
  body over the limit), 502, 503, 500.
* The pages and the document are readable without the token (they describe the
  API, not the stack); with ``--token``, Swagger UI's *Authorize* button takes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from spp.ctl.schemas import ROUTE_MODELS, json_schema

STATIC_URL: Final = "/docs/static"
#: Paths served without the bearer token.
PUBLIC_PATHS: Final = ("/docs", "/redoc", "/openapi.json")
#: Route tags whose handlers never talk to a process (no 404/502/503 from a process).
LOCAL_TAGS: Final = frozenset({"host", "processes", "metrics"})


def static_dir() -> Path:
    """The Swagger UI / ReDoc bundles shipped by the ``fastapi-offline`` package."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def is_public(path: str) -> bool:
    """True for the documentation pages, their assets and ``openapi.json``."""
    return path in PUBLIC_PATHS or path.startswith(STATIC_URL + "/")


def _text(description: str, example: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"text/plain": {"schema": {"type": "string"}, "example": example}}}


ERRORS: Final[dict[str, dict[str, Any]]] = {
    "400": _text("Bad request: invalid body, path parameter or argument, or the process refused the command.",
                 "invalid body: field 'dir': must be 'rx' or 'tx'"),
    "401": _text("spp-ctl runs with --token and the request has no valid 'Authorization: Bearer' header.",
                 "unauthorized: missing or invalid 'Authorization: Bearer' token"),
    "404": _text("No such process is connected (or no such path).", "no such process: vf 7"),
    "502": _text("The process answered something that is not the expected reply.",
                 "bad reply from process: vf 1: status reply has no 'info' object"),
    "503": _text("The process did not answer in time, or its connection went away.",
                 "process unavailable: vf 1: no reply within 5 s; connection dropped"),
    "413": _text("The request body is over spp-ctl's limit (1 MiB).", "request body too large: at most 1048576 bytes"),
    "500": _text("A bug in spp-ctl (details in its log).", "internal error (see spp-ctl log)"),
}


def build_openapi(app: FastAPI, *, token: bool) -> dict[str, Any]:
    """The corrected OpenAPI document of ``app`` (see the module docstring)."""
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            responses: dict[str, Any] = op.setdefault("responses", {})
            responses.pop("422", None)
            model = ROUTE_MODELS.get((method, path))
            if model is not None:
                schema, defs = json_schema(model)
                schemas.update(defs)
                schemas[model.__name__] = schema
                ok = responses.setdefault("200", {"description": "Successful Response"})
                ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
            codes = ["500"]
            if token:
                codes.append("401")
            local = bool(set(op.get("tags", ())) & LOCAL_TAGS)
            if op.get("parameters") or op.get("requestBody") or not local:
                codes.append("400")
            if op.get("requestBody"):
                codes.append("413")
            if not local:
                codes += ["404", "502", "503"]
            for code in sorted(codes):
                responses.setdefault(code, ERRORS[code])
            if token:
                op["security"] = [{"bearer": []}]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if token:
        components.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    return doc


def install(app: FastAPI, *, token: bool) -> None:
    """Serve ``/docs``, ``/redoc``, their assets and the corrected ``openapi.json`` on ``app``.

    ``app`` must be created with ``docs_url=None, redoc_url=None``.
    """
    app.mount(STATIC_URL, StaticFiles(directory=static_dir()), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC_URL}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC_URL}/favicon.png", with_google_fonts=False)

    cached: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.append(build_openapi(app, token=token))
        return cached[0]

    app.openapi = openapi  # type: ignore[method-assign]
