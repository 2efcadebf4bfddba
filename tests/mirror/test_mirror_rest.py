"""``/v1/port_mirrors`` on a real spp-ctl, relayed to a fake primary that serves a real registry."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from spp.ctl.server import CtlConfig, CtlService
from spp.mirror import handle_port_mirror_command
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.fake_secondary import FakePrimary

HOST = "127.0.0.1"


@pytest.fixture
def rest(dp: Dataplane) -> Iterator[tuple[httpx.Client, FakePrimary]]:
    service = CtlService(CtlConfig(bind_addr=HOST, primary_port=0, secondary_port=0, api_port=0, token=None,
                                   timeout=5.0))
    thread = threading.Thread(target=lambda: asyncio.run(service.run()), daemon=True)
    thread.start()
    assert service.ready.wait(10.0)
    primary_port, _, api_port = service.ports
    http = httpx.Client(base_url=f"http://{HOST}:{api_port}", timeout=10.0)
    fake = FakePrimary(HOST, primary_port)
    fake.on("port_mirror", lambda cmd: handle_port_mirror_command(dp, cmd.split()))
    try:
        fake.connect()
        wait_for(lambda: {"type": "primary"} in http.get("/v1/processes").json())
        yield http, fake
    finally:
        fake.disconnect()
        http.close()
        service.stop()
        thread.join(10.0)


def test_create_list_delete(rest: tuple[httpx.Client, FakePrimary]) -> None:
    http, fake = rest
    body: dict[str, Any] = {"name": "t1", "source": "ring:0", "direction": "both", "destination": "ring:5",
                            "vlan_filter": "9,18-27"}
    r = http.post("/v1/port_mirrors", json=body)
    assert (r.status_code, r.content) == (204, b"")
    full = {"name": "t2", "source": "ring:1", "destination": "ring:5", "direction": "rx",
            "src_mac": "52:54:00:00:00:01", "dst_mac": "52:54:00:00:00:02",
            "flow": {"proto": "udp", "dst": "10.0.0.0/24", "dport": 53}, "snaplen": 96, "copy": "deep"}
    assert http.post("/v1/port_mirrors", json=full).status_code == 204
    assert fake.commands[-1] == ("port_mirror add t2 ring:1 rx ring:5 src_mac 52:54:00:00:00:01 "
                                 "dst_mac 52:54:00:00:00:02 flow udp * * 10.0.0.0/24 53 snaplen 96 copy deep")
    r = http.get("/v1/port_mirrors")
    assert r.status_code == 200
    t1, t2 = r.json()
    assert (t1["name"], t1["vlan"], t1["direction"]) == ("t1", "9,18-27", "both")
    assert t1["stats"] == {"packets": 0, "filtered": 0, "nombuf": 0, "full": 0, "errors": 0}
    assert (t2["copy"], t2["snaplen"], t2["flow"]["dport"]) == ("deep", 96, 53)
    r = http.delete("/v1/port_mirrors/t1")
    assert (r.status_code, r.content) == (204, b"")
    assert [m["name"] for m in http.get("/v1/port_mirrors").json()] == ["t2"]


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"name": "t", "source": "ring:0", "destination": "ring:0"}, 400, "command error: "),
    ({"name": "t", "source": "ring:0", "destination": "ring:1", "direction": "in"}, 400, "invalid body"),
    ({"name": "t x", "source": "ring:0", "destination": "ring:1"}, 400, "invalid body"),
    ({"name": "t", "source": "ring:0 rx", "destination": "ring:1"}, 400, "invalid body"),
    ({"name": "t", "source": "ring:0", "destination": "ring:1", "vlan_filter": "9 copy deep"}, 400, "invalid body"),
    ({"name": "t", "source": "ring:0", "destination": "ring:1", "vlan_filter": "27-18"}, 400, "reversed"),
    ({"name": "t", "source": "ring:0", "destination": "ring:1", "colour": "red"}, 400, "invalid body"),
    ({"name": "t", "source": "ring:99", "destination": "ring:1"}, 400, "unknown source port"),
])
def test_bad_requests(rest: tuple[httpx.Client, FakePrimary], body: dict[str, Any], status: int,
                      message: str) -> None:
    http, _ = rest
    r = http.post("/v1/port_mirrors", json=body)
    assert r.status_code == status and message in r.text, r.text


def test_delete_unknown_and_no_primary(rest: tuple[httpx.Client, FakePrimary]) -> None:
    http, fake = rest
    r = http.delete("/v1/port_mirrors/nope")
    assert r.status_code == 404 and "no mirror 'nope'" in r.text
    fake.disconnect()
    wait_for(lambda: http.get("/v1/processes").json() == [])
    assert http.get("/v1/port_mirrors").status_code == 404
