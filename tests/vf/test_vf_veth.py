"""SPEC §3's "classify ICMP" scenario over real interfaces: phy:0 and phy:1 are veth pairs whose peers
live in network namespaces; frames go in on one peer and must come out of the other."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest
from vf_helpers import MAC_A, MAC_B, MAC_X, ok

from spp.control.manager import Manager
from spp.ports.base import open_port
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing import stack, wait_for
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, unique_ifname, veth_in_netns
from spp.testing.packets import ether

pytestmark = pytest.mark.root


def icmp_echo(i: int, dst: str) -> bytes:
    """An Ethernet/IPv4/ICMP echo request numbered ``i`` (the sequence number), 98 bytes."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x1234, i) + bytes(56)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), i, 0x4000, 64, 1, 0, bytes([10, 0, 0, 1]),
                     bytes([10, 0, 0, 2]))
    return ether(dst, "52:54:00:00:00:01", 0x0800, ip + icmp)


def seq(frame: bytes) -> int:
    off = 14 + (4 if frame[12:14] == b"\x81\x00" else 0) + 20
    return int(struct.unpack("!H", frame[off + 6 : off + 8])[0])


@pytest.fixture
def two_veths() -> Iterator[tuple[Veth, Veth]]:
    with veth_in_netns("vfa") as a, veth_in_netns("vfb") as b:
        yield a, b


def test_classify_icmp_over_veth(two_veths: tuple[Veth, Veth]) -> None:
    v0, v1 = two_veths
    with stack(n_bufs=8192) as dp:
        dp.set_config({"phy": [v0.local, v1.local]})
        _run(dp, v0, v1)


def _run(dp: Dataplane, v0: Veth, v1: Veth) -> None:
    m = Manager(dp, cores=[2, 3, 4, 5, 6], pin=False)
    send = ns_packet_socket(v0.ns, v0.peer)
    recv = ns_packet_socket(v1.ns, v1.peer)
    try:
        ok(m, "component start cls 3 classifier", "component start fwd1 4 forward", "component start fwd2 5 forward",
           "component start mgr 6 merge", "port add phy:0 rx cls", "port add ring:0 tx cls",
           "port add ring:1 tx cls add_vlantag 101 3", "port add ring:0 rx fwd1", "port add ring:2 tx fwd1",
           "port add ring:1 rx fwd2", "port add ring:3 tx fwd2", "port add ring:2 rx mgr", "port add ring:3 rx mgr",
           "port add phy:1 tx mgr", f"classifier_table add mac {MAC_A} ring:0",
           f"classifier_table add mac {MAC_B} ring:1")
        frames = [icmp_echo(i, (MAC_A, MAC_B, MAC_X)[i % 3]) for i in range(300)]
        for f in frames:
            send.send(f)
        got = recv_frames(recv, 200, timeout=30)
        assert sorted(seq(f) for f in got) == [i for i in range(300) if i % 3 != 2]
        for f in got:
            if seq(f) % 3 == 0:
                assert f == frames[seq(f)]  # VM1's traffic untouched
            else:  # VM2's tagged on the way (tx add_vlantag 101 3 on ring:1)
                orig = frames[seq(f)]
                assert f == orig[:12] + bytes([0x81, 0x00, 0x60, 101]) + orig[12:]
        info = m.status()
        assert (info["phy"], info["ring"]) == (["0", "1"], ["0", "1", "2", "3"])
        cls = info["core"][0]
        wait_for(lambda: m.status()["core"][0]["stats"]["drops"].get("no_route") == 100, timeout=10)
        assert cls["rx_port"][0]["port"] == "phy:0"
        assert m.status()["core"][3]["tx_port"][0]["stats"]["tx_packets"] == 200
        paths = {w["core"]: (w["native"], w["python_why"]) for w in m.status()["workers"]}
        assert all(paths[c] == (True, None) for c in (3, 4, 5, 6)), paths  # phy, add_vlantag: compiled loop
    finally:
        send.close()
        recv.close()
        m.exit()
        for r in range(4):
            drain_ring(dp, r)


def test_classifier_between_tap_devices(dp: Dataplane) -> None:
    """tap ports through the manager: frames written on one TAP's host side come out of another's."""
    names = [unique_ifname("vft"), unique_ifname("vft")]
    base = 20 + os.getpid() % 40
    m = Manager(dp, cores=[0, 1], pin=False)
    sockets: list[socket.socket] = []
    try:
        for i, name in enumerate(names):
            m.provide_port(open_port(dp, f"tap:{base + i}", name=name))
        ok(m, "component start cls 1 classifier", f"port add tap:{base} rx cls", f"port add tap:{base + 1} tx cls",
           "port add ring:0 tx cls", f"classifier_table add mac {MAC_A} tap:{base + 1}",
           "classifier_table add mac default ring:0")
        sockets = [ns_packet_socket(None, n) for n in names]
        frames = [icmp_echo(i, (MAC_A, MAC_X)[i % 2]) for i in range(40)]
        for f in frames:
            sockets[0].send(f)
        got = recv_frames(sockets[1], 20, timeout=30)
        assert got == frames[0::2]
        wait_for(lambda: m.status()["core"][0]["tx_port"][1]["stats"]["tx_packets"] == 20, timeout=10)
        info = m.status()
        assert info["tap"] == [str(base), str(base + 1)]
        assert list(info)[:5] == ["client-id", "phy", "vhost", "ring", "tap"]
        assert info["workers"] == [{"core": 1, "native": True, "python_why": None}]  # tap in the compiled loop
    finally:
        for s in sockets:
            s.close()
        m.exit()
        drain_ring(dp, 0)
