"""The primary's forwarder (SPP's ``pri; add/patch/forward/stop``): the same patch panel as spp-nfv."""

from __future__ import annotations

from nfv_helpers import put, take

from spp.control.primary import Primary
from spp.ports.base import open_port
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing.packets import numbered

OK = {"results": [{"result": "success"}]}


def test_forwarder_patch_forward_stop(dp: Dataplane) -> None:
    dp.set_config({"phy": []})
    pri = Primary(dp, lcores=[0, 1])
    try:
        for line in ("add ring:0", "add ring:1", "patch ring:0 ring:1", "forward"):
            assert pri.handle(line) == OK, line
        fwd = pri.handle("status")["info"]["forwarder"]
        assert fwd == {"status": "running", "ports": ["ring:0", "ring:1"],
                       "patches": [{"src": "ring:0", "dst": "ring:1"}], "core": 1}
        r0, r1 = open_port(dp, "ring:0"), open_port(dp, "ring:1")
        frames = [numbered(i, size=60 + i) for i in range(50)]
        put(dp, r0, frames)
        assert take(dp, r1, 50) == frames
        assert pri.handle("stop") == OK
        assert pri.handle("patch reset") == OK
        assert pri.handle("status")["info"]["forwarder"]["status"] == "idling"
        reply = pri.handle("del phy:0")
        assert "phy:0 cannot be deleted" in reply["results"][0]["error_details"]["message"]
    finally:
        pri.close()
        drain_ring(dp, 0)
        drain_ring(dp, 1)
