"""The ``port_mirror`` wire command."""

from __future__ import annotations

import numpy as np
import pytest

from spp.mirror import MirrorAgent, handle_port_mirror_command
from spp.ports.ring import RingPort, drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing.packets import numbered

OK = {"results": [{"result": "success"}]}


def run(dp: Dataplane, line: str) -> dict[str, object]:
    return handle_port_mirror_command(dp, line.split())


def error(reply: dict[str, object]) -> str:
    [res] = reply["results"]  # type: ignore[misc]
    assert res["result"] == "error", reply
    return str(res["error_details"]["message"])


def test_add_list_del(dp: Dataplane) -> None:
    assert run(dp, "port_mirror add t1 ring:0 both ring:5 vlan 9,18-27") == OK
    line = "port_mirror add t2 ring:1 rx ring:5 src_mac 52:54:00:00:00:01 dst_mac 52:54:00:00:00:02 " \
           "flow udp 10.0.0.0/8 * * 53 snaplen 128 copy deep"
    assert run(dp, line) == OK
    reply = run(dp, "port_mirror list")
    assert reply["results"] == OK["results"]
    t1, t2 = reply["info"]["port_mirrors"]  # type: ignore[index]
    assert t1 == {"name": "t1", "source": "ring:0", "destination": "ring:5", "direction": "both", "src_mac": None,
                  "dst_mac": None, "vlan": "9,18-27", "flow": None, "snaplen": 0, "copy": "shallow", "shared": True,
                  "stats": {"packets": 0, "filtered": 0, "nombuf": 0, "full": 0, "errors": 0}}
    assert t2["flow"] == {"proto": "udp", "src": "10.0.0.0/8", "sport": None, "dst": None, "dport": 53}
    assert (t2["snaplen"], t2["copy"], t2["src_mac"]) == (128, "deep", "52:54:00:00:00:01")
    assert handle_port_mirror_command(dp, ["del", "t1"]) == OK
    assert [m["name"] for m in run(dp, "list")["info"]["port_mirrors"]] == ["t2"]  # type: ignore[index]


@pytest.mark.parametrize(("line", "message"), [
    ("port_mirror", "missing subcommand"),
    ("port_mirror show", "unknown subcommand 'show'"),
    ("port_mirror add t ring:0 rx", "expected NAME SRC_PORT"),
    ("port_mirror add t ring:0 rx ring:0", "to itself (packet storm)"),
    ("port_mirror add t ring:0 up ring:1", "must be 'rx', 'tx' or 'both'"),
    ("port_mirror add t ring:0 rx ring:1 vlan", "'vlan' needs a value"),
    ("port_mirror add t ring:0 rx ring:1 vlan 5 vlan 6", "given twice"),
    ("port_mirror add t ring:0 rx ring:1 color red", "unknown option 'color'"),
    ("port_mirror add t ring:0 rx ring:1 flow udp * *", "needs PROTO SIP SPORT DIP DPORT"),
    ("port_mirror add t ring:0 rx ring:1 flow gre * * * *", "invalid protocol 'gre'"),
    ("port_mirror add t ring:0 rx ring:1 snaplen big", "invalid snaplen 'big': must be an integer"),
    ("port_mirror add t ring:0 rx ring:1 copy fast", "must be 'shallow' or 'deep'"),
    ("port_mirror add t ring:0 rx vhost:99 ", "unknown destination port"),
    ("port_mirror del", "exactly one NAME"),
    ("port_mirror del nope", "no mirror 'nope'"),
    ("port_mirror list all", "takes no arguments"),
])
def test_errors(dp: Dataplane, line: str, message: str) -> None:
    assert message in error(run(dp, line))


def test_duplicates_refused(dp: Dataplane) -> None:
    assert run(dp, "port_mirror add t ring:0 rx ring:1") == OK
    assert "already exists" in error(run(dp, "port_mirror add t ring:2 rx ring:1"))
    assert "already mirrored to ring:1" in error(run(dp, "port_mirror add u ring:0 tx ring:1"))


def test_command_takes_effect_through_an_agent(dp: Dataplane) -> None:
    with MirrorAgent(dp) as agent:
        src = agent.ports.get("nullpmd:0", template=numbered(1))
        assert run(dp, "port_mirror add t nullpmd:0 rx ring:4") == OK
        agent.poll()
        bufs = np.zeros(32, np.int32)
        k = src.rx_burst(bufs, 32)
        dp.free(bufs, k)
        ring = agent.ports.get("ring:4")
        assert isinstance(ring, RingPort) and ring.count == k == 32
        [m] = run(dp, "port_mirror list")["info"]["port_mirrors"]  # type: ignore[index]
        assert m["stats"]["packets"] == 32
        assert run(dp, "port_mirror del t") == OK
        agent.poll()
        assert not src.has_callbacks
    drain_ring(dp, 4)
