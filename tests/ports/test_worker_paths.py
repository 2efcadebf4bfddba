"""Real drivers under a worker: phy (veth, peer in a netns) <-> tap, both directions, byte-exact."""

from __future__ import annotations

import socket

import pytest

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import open_port
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import total_drops
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, unique_ifname
from spp.testing.packets import numbered

pytestmark = pytest.mark.root


def test_forward_phy_to_tap_and_back(dp: Dataplane, veth: Veth) -> None:
    tap_name = unique_ifname("spptap")
    dp.set_config({"phy": [veth.local]})
    phy = open_port(dp, "phy:0")
    assert phy.fileno() is not None  # starts receiving before the first frame is sent
    tap = open_port(dp, "tap:9", name=tap_name)
    peer = ns_packet_socket(veth.ns, veth.peer)
    host = ns_packet_socket(None, tap_name)
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        plan = WorkerPlan((ComponentPlan(Forward(dp, "f1", 0), (Attachment(phy),), (Attachment(tap),)),
                           ComponentPlan(Forward(dp, "f2", 0), (Attachment(tap),), (Attachment(phy),))), 1)
        w.publish(plan, timeout=300)
        assert w._native is not None  # phy and tap both run in the compiled loop
        there = [numbered(i, size=60 + (i * 37) % 1455) for i in range(300)]
        back = [numbered(10_000 + i, size=60 + (i * 53) % 1455, vlan=i % 4095 + 1) for i in range(300)]
        for f in there:
            peer.send(f)
        def recv(sock: socket.socket, count: int) -> list[bytes]:
            try:
                return recv_frames(sock, count, timeout=60)
            except TimeoutError as e:
                raise AssertionError(f"{e}; phy {phy.stats_dict()} {phy.describe()}; "
                                     f"tap {tap.stats_dict()} {tap.describe()}; worker error {w.error}") from None

        assert recv(host, len(there)) == there
        for f in back:
            host.send(f)
        assert recv(peer, len(back)) == back
        w.publish(WorkerPlan((), 2))
    finally:
        w.stop()
        peer.close()
        host.close()
        tap.close()
        phy.close()
    assert w.error is None
    p, t = phy.stats_dict(), tap.stats_dict()
    assert p["rx_packets"] == t["tx_packets"] + total_drops(tap.stats) == 300
    assert t["rx_packets"] == p["tx_packets"] + total_drops(phy.stats) == 300
