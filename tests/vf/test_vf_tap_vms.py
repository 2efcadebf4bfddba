"""Issue 3's "two VMs behind TAP ports" scenario, with real kernel IP stacks.

An outside host (a namespace behind the veth ``phy:0``) talks to two "VMs": namespaces
whose NICs are spp's TAP devices, moved into them.  spp-vf classifies by destination
MAC towards each VM and merges their replies back to ``phy:0``, configured with SPP's
own commands.  ARP (broadcast, flooded by reference count) and ICMP echo and UDP
request/response from outside to each VM must succeed; unknown unicast must go to the
``default`` port; afterwards every counter adds up and the pool is whole.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute, NetNS
from vf_helpers import ok

from spp.control.manager import Manager
from spp.ports.base import open_port
from spp.ports.ring import drain_ring
from spp.runtime.stats import total_drops
from spp.testing import stack, wait_for
from spp.testing.netns import in_netns, netns, ns_packet_socket, unique_ifname, veth_in_netns
from spp.testing.packets import udp

pytestmark = pytest.mark.root

OUT_IP, VM_IPS = "10.77.0.1", ("10.77.0.11", "10.77.0.12")
OUT_MAC, VM_MACS = "02:00:00:77:00:01", ("02:00:00:77:00:11", "02:00:00:77:00:12")
UNKNOWN = "02:00:00:77:00:99"


def _configure(ns: str, ifname: str, mac: str, ip: str) -> None:
    with NetNS(ns) as r:
        idx = r.link_lookup(ifname=ifname)[0]
        r.link("set", index=idx, address=mac)
        r.addr("add", index=idx, address=ip, prefixlen=24)
        r.link("set", index=idx, state="up")


def _move(ifname: str, ns: str) -> None:
    with IPRoute() as r:
        r.link("set", index=r.link_lookup(ifname=ifname)[0], net_ns_fd=ns)


def _checksum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ping(ns: str, dst: str, seq: int, timeout: float = 10.0) -> bool:
    """One ICMP echo from namespace ``ns`` (the kernel resolves the MAC by ARP first)."""

    def run() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
            s.settimeout(timeout)
            body = struct.pack("!BBHHH", 8, 0, 0, 0x5151, seq) + b"spp-vf-tap-vms" * 4
            body = body[:2] + struct.pack("!H", _checksum(body)) + body[4:]
            s.sendto(body, (dst, 0))
            while True:
                data, addr = s.recvfrom(2048)
                ihl = (data[0] & 0x0F) * 4
                typ, _, _, ident, got_seq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if addr[0] == dst and typ == 0 and ident == 0x5151 and got_seq == seq:
                    return True

    try:
        return in_netns(ns, run)
    except TimeoutError:
        return False


def udp_echo_server(ns: str, ip: str) -> socket.socket:
    return in_netns(ns, lambda: _bound(ip))


def _bound(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 7777))
    s.settimeout(10)
    return s


@pytest.fixture
def hosts() -> Iterator[tuple[str, str, str, str]]:
    """(outside veth name on the host, outside ns, vm1 ns, vm2 ns)."""
    with veth_in_netns("tvo") as out, netns(unique_ifname("tv1n")) as vm1, netns(unique_ifname("tv2n")) as vm2:
        _configure(out.ns, out.peer, OUT_MAC, OUT_IP)
        yield out.local, out.ns, vm1, vm2


def test_two_vms_behind_taps(hosts: tuple[str, str, str, str]) -> None:
    phy_if, out_ns, vm1, vm2 = hosts
    taps = (unique_ifname("tvt"), unique_ifname("tvt"))
    t0 = 30 + os.getpid() % 30
    with stack(n_bufs=8192) as dp:
        dp.set_config({"phy": [phy_if]})
        m = Manager(dp, cores=[0, 1, 2, 3, 4, 5], pin=False)
        servers: list[socket.socket] = []
        try:
            for i, name in enumerate(taps):
                m.provide_port(open_port(dp, f"tap:{t0 + i}", name=name))
            for name, ns, mac, ip in zip(taps, (vm1, vm2), VM_MACS, VM_IPS, strict=True):
                _move(name, ns)
                _configure(ns, name, mac, ip)
            ok(m, "component start cls 1 classifier", "component start fwd1 2 forward",
               "component start fwd2 3 forward", "component start mgr 4 merge",
               "port add phy:0 rx cls", "port add ring:0 tx cls", "port add ring:1 tx cls",
               "port add ring:2 tx cls", "port add ring:0 rx fwd1", f"port add tap:{t0} tx fwd1",
               "port add ring:1 rx fwd2", f"port add tap:{t0 + 1} tx fwd2",
               f"port add tap:{t0} rx mgr", f"port add tap:{t0 + 1} rx mgr", "port add phy:0 tx mgr",
               f"classifier_table add mac {VM_MACS[0]} ring:0", f"classifier_table add mac {VM_MACS[1]} ring:1",
               "classifier_table add mac default ring:2")

            # ICMP echo to each VM: ARP broadcast is flooded, the replies come back through the merger.
            for i, ip in enumerate(VM_IPS):
                assert wait_for(lambda ip=ip, i=i: ping(out_ns, ip, i, timeout=2), timeout=60,
                                message=lambda ip=ip: f"echo reply from {ip}: {m.status()}")

            # UDP request/response to each VM.
            servers = [udp_echo_server(ns, ip) for ns, ip in zip((vm1, vm2), VM_IPS, strict=True)]

            def request(ip: str, srv: socket.socket) -> bytes:
                def run() -> bytes:
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                        c.settimeout(10)
                        c.sendto(b"hello " + ip.encode(), (ip, 7777))
                        data, peer = srv.recvfrom(100)
                        srv.sendto(data.upper(), peer)
                        return c.recv(100)
                return in_netns(out_ns, run)

            for ip, srv in zip(VM_IPS, servers, strict=True):
                assert request(ip, srv) == b"HELLO " + ip.encode()

            # Unknown unicast goes to default (ring:2), not to a VM.
            before = m.status()
            assert [w["native"] for w in before["workers"]] == [True] * 4, before["workers"]  # phy, tap: compiled
            sock = ns_packet_socket(out_ns, hosts_peer(out_ns))
            try:
                for k in range(25):
                    sock.send(udp(UNKNOWN, OUT_MAC, sip=OUT_IP, dip="10.77.0.99", payload=bytes([k]) * 8))
            finally:
                sock.close()

            def ring2_tx() -> int:
                for comp in m.status()["core"]:
                    for p in comp.get("tx_port", []):
                        if p["port"] == "ring:2":
                            return int(p["stats"]["tx_packets"])
                return 0

            base = next(int(p["stats"]["tx_packets"]) for c in before["core"] for p in c.get("tx_port", [])
                        if p["port"] == "ring:2")
            wait_for(lambda: ring2_tx() - base >= 25, timeout=20, message="25 unknown-unicast frames on ring:2")
        finally:
            for s in servers:
                s.close()
            m.exit()
            drain_ring(dp, 2)
        # Conservation per port and component, from the shared counters.
        st = dp.stats
        slot = dp.port_slot

        def row(t: str, i: int) -> tuple[int, int, int]:
            r = st[slot(t, i)]
            return int(r[0]), int(r[2]), total_drops(r)

        for i in range(2):  # fwd1/fwd2: ring:i -> tap
            ring_rx = row("ring", i)[0]
            _, tap_tx, tap_drops = row("tap", t0 + i)
            assert ring_rx == tap_tx + tap_drops
        taps_rx = row("tap", t0)[0] + row("tap", t0 + 1)[0]
        _, phy_tx, phy_drops = row("phy", 0)
        assert taps_rx == phy_tx + phy_drops  # merger: both VMs' frames back out of phy:0
        assert row("ring", 2)[1] >= 25  # unknown unicast (and floods) reached default


def hosts_peer(ns: str) -> str:
    with NetNS(ns) as r:
        for link in r.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name != "lo":
                return str(name)
    raise AssertionError(f"no interface in {ns}")

