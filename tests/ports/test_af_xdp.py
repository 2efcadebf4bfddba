"""phy:N on AF_XDP (``driver=af_xdp``): conformance on a veth, status, fallback, refusal, cleanup."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from spp.ports.base import PortError, open_port
from spp.runtime.dataplane import Dataplane
from spp.testing.conformance import Harness, check_port, iter_steps
from spp.testing.netns import Veth, ns_packet_socket, recv_frames


def _have_libxdp() -> bool:
    import ctypes

    try:
        ctypes.CDLL("libxdp.so.1")
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _have_libxdp(), reason="libxdp1 not installed (scripts/setup.sh installs it)")


def xdp_attached(iface: str) -> bool:
    out = subprocess.run(["ip", "-d", "link", "show", "dev", iface], capture_output=True, text=True, check=False)
    return " xdp" in out.stdout or "prog/xdp" in out.stdout


@pytest.mark.root
def test_af_xdp_phy_conforms(dp: Dataplane, veth: Veth) -> None:
    @contextmanager
    def make(dp: Dataplane) -> Iterator[Harness]:
        dp.set_config({"phy": ["nonexistent0", veth.local], "phy_driver": "af_xdp"})
        port = open_port(dp, "phy:1")
        assert port.fileno() is not None
        assert port.describe()["driver"] == "af_xdp"
        sock = ns_packet_socket(veth.ns, veth.peer)
        try:
            yield Harness(port, lambda frames: [sock.send(f) for f in frames] and None,
                          lambda count, timeout: recv_frames(sock, count, timeout=timeout),
                          runt=False)  # the kernel refuses to send frames < 14 bytes
        finally:
            sock.close()
            port.close()

    assert check_port(make, dp) == list(iter_steps())
    assert not xdp_attached(veth.local), "the XDP program must be gone once the port closed"


@pytest.mark.root
def test_af_xdp_refuses_a_held_interface_and_auto_falls_back(dp: Dataplane, veth: Veth) -> None:
    first = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
    try:
        assert not xdp_attached(veth.local)  # nothing taken before the port receives
        assert first.fileno() is not None
        assert xdp_attached(veth.local)
        # another spp process's program: simulated by a pid file naming a live process that is not us
        from spp.ports import af_xdp

        with open(af_xdp._pidfile(first.ifindex, veth.local), "w") as f:  # type: ignore[attr-defined]
            f.write("1\n")
        with pytest.raises(PortError, match="already has an XDP program attached"):
            open_port(dp, "phy:1", iface=veth.local, driver="af_xdp")
        other = open_port(dp, "phy:1", iface=veth.local, driver="auto")
        try:
            assert other.describe()["driver"] == "af_packet"  # refused at open: af_packet from the start
            assert "already has an XDP program" in other.describe()["driver_note"]
        finally:
            other.close()
    finally:
        first.close()
    assert not xdp_attached(veth.local)


CHILD = """
import sys, time
from spp.ports.base import open_port
from spp.runtime.dataplane import Dataplane, Layout
from spp.testing import unique_prefix
dp = Dataplane.create(unique_prefix("xdpc"), Layout(n_bufs=1024, n_rings=2, ring_size=64))
port = open_port(dp, "phy:0", iface=sys.argv[1], driver="af_xdp")
assert port.fileno() is not None  # the socket opens with the first receive
print("ready", dp.seg.path, flush=True)
time.sleep(600)
"""


@pytest.mark.root
def test_a_crashed_owner_s_program_is_removed_at_the_next_start(dp: Dataplane, veth: Veth,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import sys

    child = subprocess.Popen([sys.executable, "-c", CHILD, veth.local], stdout=subprocess.PIPE, text=True)
    seg = ""
    try:
        assert child.stdout is not None
        word, seg = child.stdout.readline().split()
        assert word == "ready"
        assert xdp_attached(veth.local)
        with pytest.raises(PortError, match=rf"held by spp process {child.pid}"):
            open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
    finally:
        child.kill()  # a crash: no cleanup ran
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
        if seg:  # the crashed process's segment (no primary of its prefix will ever clean it)
            os.unlink(seg)
    assert xdp_attached(veth.local), "a killed process leaves its XDP program behind"
    with caplog.at_level("WARNING"):
        port = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
        assert port.fileno() is not None
    try:
        assert f"stale XDP program that spp process {child.pid}" in caplog.text
        assert port.describe()["driver"] == "af_xdp"
    finally:
        port.close()
    assert not xdp_attached(veth.local)


@pytest.mark.root
def test_af_xdp_interface_deleted_under_the_port(dp: Dataplane, veth: Veth) -> None:
    import numpy as np

    from spp.runtime.stats import REASON
    from spp.testing.netns import delete_link

    port = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
    try:
        assert port.fileno() is not None and port.describe()["driver"] == "af_xdp"  # the socket is open
        delete_link(veth.local)
        port.check_link(force=True)  # type: ignore[attr-defined]
        assert port.describe()["link"] == "gone"
        bufs = np.empty(4, np.int32)
        assert port.rx_burst(bufs, 4) == 0
        assert dp.alloc(bufs, 4) == 4
        dp.meta[bufs, 0] = 128
        dp.meta[bufs, 1] = 60
        assert port.tx_burst(bufs, 4) == 4  # accepted and counted, as AF_PACKET does
        assert int(port.stats[REASON["link_down"]]) == 4
    finally:
        port.close()


@pytest.mark.root
def test_af_xdp_counts_what_the_kernel_dropped_as_ring_full(dp: Dataplane, veth: Veth) -> None:
    import numpy as np

    from spp.ports.af_xdp import N_RX
    from spp.runtime.stats import REASON, RX_PACKETS
    from spp.testing.kit import wait_for

    port = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp")
    assert port.fileno() is not None
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        frame = bytes.fromhex("02aabbccdd01" "02aabbccdd02" "88b5") + bytes(50)
        for _ in range(N_RX + 500):  # nobody reads: the rx ring fills, the kernel drops the rest
            sock.send(frame)

        def dropped() -> bool:
            port.check_link(force=True)  # type: ignore[attr-defined]
            return int(port.stats[REASON["ring_full"]]) == 500

        wait_for(dropped, timeout=10, message="500 frames counted ring_full")
        bufs = np.empty(64, np.int32)
        got = 0
        while (k := port.rx_burst(bufs, 64)) > 0:
            dp.free(bufs[:k].copy(), k)
            got += k
        assert got == N_RX == int(port.stats[RX_PACKETS])
    finally:
        sock.close()
        port.close()


@pytest.mark.root
def test_compiled_worker_drives_af_xdp(dp: Dataplane, veth: Veth) -> None:
    """phy:0 (AF_XDP) → ring:1 and ring:0 → phy:0 in the compiled worker loop, byte-exact (VLAN tags in line)."""
    import numpy as np

    from spp.components.forward import Forward
    from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
    from spp.ports.base import PortTable
    from spp.testing.kit import wait_for
    from spp.testing.packets import numbered

    pt = PortTable(dp)
    phy, rin, rout = open_port(dp, "phy:0", iface=veth.local, driver="af_xdp"), pt.get("ring:0"), pt.get("ring:1")
    w = Worker(dp, 0, pin=False)
    w.start()
    sock = ns_packet_socket(veth.ns, veth.peer)
    bufs = np.zeros(32, np.int32)
    got: list[bytes] = []

    def drain(count: int) -> bool:
        k = rout.rx_burst(bufs)
        got.extend(dp.frame(int(b)) for b in bufs[:k])
        dp.free(bufs[:k].copy(), k)
        return len(got) >= count

    try:
        plan = WorkerPlan((ComponentPlan(Forward(dp, "in", 0), (Attachment(phy),), (Attachment(rout),)),
                           ComponentPlan(Forward(dp, "out", 0), (Attachment(rin),), (Attachment(phy),))), 1)
        w.publish(plan, timeout=300)
        assert w._native is not None  # the compiled loop drives the AF_XDP port
        there = [numbered(i, size=60 + i, vlan=(i % 3) * 100) for i in range(300)]
        for f in there:
            sock.send(f)
        wait_for(lambda: drain(len(there)), timeout=300,  # a cold compile of the loop
                 message=lambda: f"{len(got)} of {len(there)}")
        assert got == there
        back = [numbered(1000 + i, size=64 + i) for i in range(300)]
        ids = np.zeros(len(back), np.int32)
        assert dp.alloc(ids) == len(back)
        for b, f in zip(ids, back, strict=True):
            dp.write_frame(int(b), f)
        assert rin.tx_burst(ids, len(back)) == len(back)
        assert recv_frames(sock, len(back)) == back
        st = phy.stats_dict()
        assert (st["rx_packets"], st["tx_packets"], st["drops"]) == (300, 300, {}), st
    finally:
        sock.close()
        w.stop()
        pt.close_all()
        phy.close()
