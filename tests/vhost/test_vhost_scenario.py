"""SPEC §3 "classify ICMP" with two VMs on vhost-user: testpmd virtio-user guests as the VMs.

    outside ns ─veth─ phy:0 → cls ─ring:0→ fwd1 → vhost:0 ⇄ guest 1 (testpmd io: echoes)
                               └─ring:1→ fwd2 → vhost:1 ⇄ guest 2 (testpmd rxonly)
    vhost:0, vhost:1 → mgr → phy:1 ─veth─ outside ns

Configured with SPP's own commands through the spp-vf Manager.  ICMP echo requests to
each VM's MAC (and to an unknown MAC) go in at phy:0; each guest must receive exactly
the frames for its MAC (testpmd's port statistics against spp's counters), guest 1's
echoes must come out of phy:1 byte for byte, the unknown ones are counted ``no_route``,
every path adds up and the pool is whole (``stack`` checks it on exit).  Root, and
skipped without dpdk-testpmd.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from vhost_helpers import GuestPmd, guest_pmd, need_testpmd

from spp.control.manager import Manager
from spp.ports.base import Port, open_port
from spp.ports.ring import drain_ring
from spp.runtime.stats import RX_PACKETS, TX_PACKETS, total_drops
from spp.testing import stack, wait_for
from spp.testing.netns import Veth, ns_packet_socket, recv_frames, veth_in_netns
from spp.testing.packets import ether

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

VM_MACS = ("52:54:00:12:34:56", "52:54:00:12:34:58")
UNKNOWN = "52:54:00:99:99:99"
OUTSIDE = "52:54:00:00:00:01"
COUNTS = (50, 30, 5)  # frames to VM 1, VM 2, the unknown MAC


def _csum(data: bytes) -> int:
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def icmp_echo(dst_mac: str, seq: int, vm: int) -> bytes:
    """An Ethernet/IPv4/ICMP echo request from the outside host to VM ``vm`` (sequence ``seq``)."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x5350, seq) + b"spp-vhost-classify-icmp-" + bytes([vm]) * 8
    icmp = icmp[:2] + struct.pack("!H", _csum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0x4000, 64, 1, 0,
                     bytes([10, 9, 0, 1]), bytes([10, 9, 0, 11 + vm]))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return ether(dst_mac, OUTSIDE, 0x0800, ip + icmp)


@pytest.fixture
def nics() -> Iterator[tuple[Veth, Veth]]:
    """Two veth pairs with their peers in fresh namespaces (IPv6 off: nothing but our frames)."""
    with veth_in_netns("vsi") as a, veth_in_netns("vso") as b:
        yield a, b


def _ok(m: Manager, *lines: str) -> None:
    for line in lines:
        reply = m.execute(line)
        assert reply == {"results": [{"result": "success"}]}, (line, reply)


def _running(port: Port) -> bool:
    return bool(port.running(0) and port.running(1))  # type: ignore[attr-defined]


def _guest_counts(g: GuestPmd) -> tuple[int, int]:
    st = g.port_stats()
    return st["RX-packets"], st["TX-packets"]


def test_classify_icmp_to_two_vhost_vms(nics: tuple[Veth, Veth], tmp_path: Path) -> None:
    need_testpmd()
    nic_in, nic_out = nics
    socks = (str(tmp_path / "vm1.sock"), str(tmp_path / "vm2.sock"))
    with stack(n_bufs=8192) as dp:
        dp.set_config({"phy": [nic_in.local, nic_out.local]})
        m = Manager(dp, cores=[0, 1, 2, 3, 4], pin=False)
        vports = [open_port(dp, f"vhost:{i}", path=socks[i]) for i in range(2)]
        try:
            for p in vports:
                m.provide_port(p)
            with guest_pmd(socks[0], "io") as g1, guest_pmd(socks[1], "rxonly") as g2:
                wait_for(lambda: all(_running(p) for p in vports), timeout=60, message="both guests' queues")
                g1.cmd("start")
                g2.cmd("start")
                _ok(m, "component start cls 1 classifier", "component start fwd1 2 forward",
                    "component start fwd2 3 forward", "component start mgr 4 merge",
                    "port add phy:0 rx cls", "port add ring:0 tx cls", "port add ring:1 tx cls",
                    "port add ring:0 rx fwd1", "port add vhost:0 tx fwd1",
                    "port add ring:1 rx fwd2", "port add vhost:1 tx fwd2",
                    "port add vhost:0 rx mgr", "port add vhost:1 rx mgr", "port add phy:1 tx mgr",
                    f"classifier_table add mac {VM_MACS[0]} ring:0", f"classifier_table add mac {VM_MACS[1]} ring:1")
                to_vm1 = [icmp_echo(VM_MACS[0], i, 0) for i in range(COUNTS[0])]
                to_vm2 = [icmp_echo(VM_MACS[1], i, 1) for i in range(COUNTS[1])]
                lost = [icmp_echo(UNKNOWN, i, 2) for i in range(COUNTS[2])]
                out = ns_packet_socket(nic_out.ns, nic_out.peer)
                inj = ns_packet_socket(nic_in.ns, nic_in.peer)
                try:
                    for i in range(max(COUNTS)):  # interleaved, as a NIC would see them
                        for frames in (to_vm1, to_vm2, lost):
                            if i < len(frames):
                                inj.send(frames[i])
                    echoed = recv_frames(out, COUNTS[0], timeout=30)
                finally:
                    inj.close()
                    out.close()
                wait_for(lambda: _guest_counts(g1) == (COUNTS[0], COUNTS[0]) and _guest_counts(g2)[0] == COUNTS[1],
                         timeout=30, interval=0.2,
                         message=lambda: f"guest counts {_guest_counts(g1)}, {_guest_counts(g2)}; {m.status()}")
                g1_rx, g1_tx = _guest_counts(g1)
                g2_rx, g2_tx = _guest_counts(g2)
                g1.cmd("stop")
                g2.cmd("stop")
            cls_drops = m.status()["core"]
        finally:
            m.exit()
            for p in vports:
                p.close()
            for r in (0, 1):
                drain_ring(dp, r)

        # Each guest got exactly its MAC's frames; guest 1's echoes came back out of phy:1 unchanged.
        assert (g1_rx, g1_tx, g2_rx, g2_tx) == (COUNTS[0], COUNTS[0], COUNTS[1], 0)
        assert sorted(echoed) == sorted(to_vm1)

        # Counted on spp's side too, and every path adds up.
        st = dp.stats

        def row(t: str, i: int) -> tuple[int, int, int]:
            r = st[dp.port_slot(t, i)]
            return int(r[RX_PACKETS]), int(r[TX_PACKETS]), total_drops(r)

        assert row("vhost", 0)[1] == COUNTS[0] and row("vhost", 1)[1] == COUNTS[1]
        assert row("vhost", 0)[0] == COUNTS[0] and row("vhost", 1)[0] == 0
        assert row("vhost", 0)[2] == row("vhost", 1)[2] == 0
        assert row("phy", 0)[0] == sum(COUNTS) and row("phy", 1)[1] == COUNTS[0]
        assert row("ring", 0)[1] == row("ring", 0)[0] == COUNTS[0]
        assert row("ring", 1)[1] == row("ring", 1)[0] == COUNTS[1]
        cls = next(c for c in cls_drops if c.get("name") == "cls")
        assert cls["stats"]["drops"] == {"no_route": COUNTS[2]}, cls
