"""The small ones of issue 16: readable pattern errors, 413 on huge bodies, 404 on a missing port mirror."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ctl_helpers import Ctl

from spp.ctl.api import MAX_BODY_BYTES, PATTERN_WORDS
from spp.testing.fake_secondary import FakePrimary, error_reply


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": "a b", "source": "ring:0", "destination": "ring:1"},
         "field 'name': must be 1 to 32 letters, digits, '_', '.' or '-'"),
        ({"name": "m", "source": "ring 0", "destination": "ring:1"},
         "field 'source': must be TYPE:N such as phy:0, ring:1 or phy:0nq1"),
        ({"name": "m", "source": "ring:0", "destination": "ring:1", "src_mac": "zz"},
         "field 'src_mac': must be a MAC address XX:XX:XX:XX:XX:XX (hex digits)"),
        ({"name": "m", "source": "ring:0", "destination": "ring:1", "vlan_filter": "x"},
         "field 'vlan_filter': must be VLAN ids and ranges, e.g. 9,18-27"),
    ],
)
def test_pattern_errors_say_the_accepted_form_in_words(ctl: Ctl, body: dict[str, str], expected: str) -> None:
    response = ctl.http.post("/v1/port_mirrors", json=body)
    assert response.status_code == 400
    assert response.text == f"invalid body: {expected}"
    assert "pattern" not in response.text


def test_every_pattern_of_the_api_has_words(ctl: Ctl) -> None:
    text = ctl.http.get("/openapi.json").text
    import json

    patterns: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                patterns.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(text))
    assert patterns and patterns <= set(PATTERN_WORDS)


def test_a_body_over_one_mib_is_refused_with_413(ctl: Ctl) -> None:
    big = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = ctl.http.post("/v1/port_mirrors", content=big)
    assert (response.status_code, response.text) == (413, f"request body too large: at most {MAX_BODY_BYTES} bytes")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(40):
            yield b" " * 65536

    response = ctl.http.post("/v1/port_mirrors", content=chunks())
    assert response.status_code == 413


def test_deleting_a_missing_port_mirror_is_404(ctl: Ctl) -> None:
    primary: FakePrimary = ctl.primary()
    primary.on("port_mirror del", error_reply("no mirror 'nope'; registered: none"))
    response = ctl.http.delete("/v1/port_mirrors/nope")
    assert (response.status_code, response.text) == (404, "no mirror 'nope'; registered: none")
