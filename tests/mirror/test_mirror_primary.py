"""``/v1/port_mirrors`` end to end: a real spp-ctl relaying to a real spp-primary, which edits the
stack's shared registry."""

from __future__ import annotations

import httpx

from spp.cli.stack import LocalStack
from spp.mirror import list_mirrors
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for


def test_port_mirrors_through_spp_ctl_and_spp_primary() -> None:
    with LocalStack() as local, httpx.Client(base_url=local.url, timeout=20) as http:
        local.start_ctl()
        local.start_primary(extra=["--pool-size", "1024", "--rings", "8", "--ring-size", "64"])
        wait_for(lambda: {"type": "primary"} in http.get("/v1/processes").json(), timeout=30)
        body = {"name": "tap1", "source": "ring:0", "direction": "both", "destination": "ring:5",
                "vlan_filter": "9,18-27", "snaplen": 128}
        r = http.post("/v1/port_mirrors", json=body)
        assert (r.status_code, r.content) == (204, b""), r.text
        r = http.post("/v1/port_mirrors", json={**body, "name": "tap2"})
        assert r.status_code == 400 and "ring:0 is already mirrored to ring:5" in r.text
        r = http.post("/v1/port_mirrors", json={**body, "name": "tap3", "destination": "ring:8"})
        assert r.status_code == 400 and "unknown destination port" in r.text  # the primary has ring:0..7
        [m] = http.get("/v1/port_mirrors").json()
        assert (m["name"], m["vlan"], m["snaplen"], m["stats"]["packets"]) == ("tap1", "9,18-27", 128, 0)
        dp = Dataplane.attach(local.prefix)  # any process of the stack sees the same registry
        try:
            assert [x["name"] for x in list_mirrors(dp)] == ["tap1"]
            assert http.delete("/v1/port_mirrors/tap1").status_code == 204
            assert list_mirrors(dp) == []
        finally:
            dp.close()
        assert http.get("/v1/port_mirrors").json() == []
