"""``openapi.json`` tells the truth and ``/docs`` works offline.

Live replies, errors included, are checked against the document: the status code must
be declared for the operation, and the body must match the declared content (JSON
schema, or text/plain for errors).  The JSON shapes are checked on a real stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from ctl_helpers import Ctl, running_ctl
from openapi_spec_validator import validate as validate_spec

from spp.cli.main import main
from spp.cli.stack import LocalStack
from spp.ctl.schemas import ROUTE_MODELS
from spp.testing import wait_for
from spp.testing.fake_secondary import success, vf_status_info


def operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """The operation of ``doc`` that serves ``method path`` (templates matched)."""
    for template, item in doc["paths"].items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in item:
            op: dict[str, Any] = item[method.lower()]
            return op
    raise AssertionError(f"{method} {path}: not in openapi.json")


def check(doc: dict[str, Any], response: httpx.Response) -> None:
    """``response`` is what ``doc`` says its operation answers."""
    request = response.request
    op = operation(doc, request.method, request.url.path)
    code = str(response.status_code)
    assert code in op["responses"], f"{request.method} {request.url.path} -> {code} {response.text!r}: undeclared"
    declared = op["responses"][code].get("content")
    if not declared:
        assert response.content == b"", response.text
        return
    media = response.headers["content-type"].split(";")[0]
    assert media in declared, f"{request.method} {request.url.path} -> {code} {media}, declared {list(declared)}"
    schema = declared[media]["schema"]
    body: Any = response.json() if media == "application/json" else response.text
    jsonschema.Draft202012Validator({"components": doc["components"], **schema}).validate(body)


@pytest.fixture
def doc(ctl: Ctl) -> dict[str, Any]:
    result: dict[str, Any] = ctl.http.get("/openapi.json").json()
    return result


def test_document_is_valid_and_complete(doc: dict[str, Any]) -> None:
    validate_spec(doc)  # type: ignore[arg-type]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "422" not in op["responses"], (method, path)
            assert {"500"} <= set(op["responses"]), (method, path)
            ok = op["responses"].get("200", {}).get("content", {})
            # FastAPI's {} is "a Response object of its own" (HTML, a stream): not a JSON reply
            if ok.get("application/json", {}).get("schema"):
                assert (method, path) in ROUTE_MODELS, f"{method} {path} returns JSON but has no model"
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_docs_pages_work_offline(ctl: Ctl) -> None:
    for page in ("/docs", "/redoc"):
        html = ctl.http.get(page)
        assert html.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html.text)
        refs = [u for pair in urls for u in pair if u]
        assert refs, html.text
        for ref in refs:
            assert ref.startswith("/"), f"{page} loads {ref} from elsewhere"
            assert ctl.http.get(ref).status_code == 200, ref
        assert "cdn" not in html.text.lower()
    assert ctl.http.get("/docs/static/swagger-ui-bundle.js").headers["content-type"].startswith(
        ("application/javascript", "text/javascript"))


def test_errors_are_what_the_document_says(ctl: Ctl, doc: dict[str, Any]) -> None:
    vf = ctl.secondary(1, "vf")
    vf.status_info = vf_status_info(1)
    vf.on("component stop", {"results": [{"result": "error", "error_details": {"message": "no such component"}}]})
    bad = ctl.secondary(2, "vf")
    bad.on("status", success(info="not an object"))
    silent = ctl.secondary(3, "vf")
    silent.hang_on("status")
    http = ctl.http
    cases = [
        (http.get("/v1/vfs/1"), 200),
        (http.get("/v1/vfs/abc"), 400),
        (http.put("/v1/vfs/1/components/c1/ports", json={"action": "attach", "port": "ring:0", "dir": "up"}), 400),
        (http.put("/v1/vfs/1/components/c1/ports", content=b"{not json"), 400),
        (http.delete("/v1/vfs/1/components/zz"), 400),
        (http.get("/v1/vfs/9"), 404),
        (http.get("/v1/vfs/2"), 502),
        (http.get("/v1/vfs/3"), 503),
        (http.post("/v1/vfs/1/components", json={"name": "c1", "core": 2, "type": "forward"}), 204),
        (http.get("/v1/processes"), 200),
        (http.get("/v1/cpu_layout"), 200),
        (http.get("/v1/cpu_usage"), 200),
        (http.get("/v1/primary/status"), 404),
        (http.post("/v1/port_mirrors", json={"name": "m", "source": "nope"}), 400),
    ]
    for response, code in cases:
        assert response.status_code == code, (response.request.url, response.text)
        check(doc, response)


def test_token_errors_are_declared() -> None:
    with running_ctl(token="tok") as ctl:
        doc = httpx.get(f"{ctl.url}/openapi.json").json()  # the document is public
        assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        assert httpx.get(f"{ctl.url}/docs").status_code == 200
        response = httpx.get(f"{ctl.url}/v1/processes")
        assert response.status_code == 401
        check(doc, response)
        check(doc, ctl.http.get("/v1/processes"))


TOPOLOGY = """
processes:
  - kind: vf
    client_id: 1
    cores: "0,1"
    components:
      - {name: gen, type: forward, core: 1, rx: [nullpmd:0], tx: [ring:0]}
      - {name: cls, type: classifier, core: 1, rx: [ring:0], tx: [ring:1, nullpmd:1]}
    classifier:
      - {mac: "52:54:00:00:00:01", port: ring:1}
      - {mac: default, port: nullpmd:1}
port_mirrors:
  - {name: tap1, source: nullpmd:1, direction: tx, destination: nullpmd:2}
"""


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    with LocalStack() as local:
        local.start_ctl()
        local.start_primary(extra=["--pool-size", "2048", "--rings", "8", "--ring-size", "256"])
        yield local


@pytest.mark.timeout(600)
def test_live_replies_of_a_real_stack_match_the_models(stack: LocalStack, tmp_path: Path) -> None:
    topo = tmp_path / "t.yaml"
    topo.write_text(TOPOLOGY)
    assert main(["up", str(topo), "-b", stack.server, "-s", stack.secondary_addr]) == 0
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        doc = http.get("/openapi.json").json()
        # a cold numba cache compiles the data path first (minutes on a busy 2-core machine)
        wait_for(lambda: http.get("/v1/port_mirrors").json()[0]["stats"]["packets"] > 0, timeout=400, interval=0.2)
        for path in ("/v1/processes", "/v1/vfs/1", "/v1/primary/status", "/v1/port_mirrors", "/v1/cpu_layout",
                     "/v1/cpu_usage"):
            response = http.get(path)
            assert response.status_code == 200, response.text
            check(doc, response)
        vf = http.get("/v1/vfs/1").json()
        assert vf["classifier_table"] and any(c.get("stats") for c in vf["components"])
        check(doc, http.get("/v1/mirrors/1"))  # no spp_mirror: a declared 404
        check(doc, http.put("/v1/primary/ports", json={"action": "add", "port": "phy:99"}))
        assert main(["down", "-b", stack.server]) == 0
