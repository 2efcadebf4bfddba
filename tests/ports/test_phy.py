"""phy:N over real veth pairs (peer in a network namespace)."""

from __future__ import annotations

import numpy as np
import pytest

from spp.ports.base import PortError, open_port
from spp.ports.phy import PhyPort
from spp.runtime.dataplane import DATA_ROOM, M_TCI, Dataplane
from spp.testing import stack, wait_for
from spp.testing.netns import Veth, create_veth, delete_link, ns_packet_socket, recv_frames
from spp.testing.packets import frame_number, numbered, udp

pytestmark = pytest.mark.root


def _rx_all(dp: Dataplane, port: PhyPort, count: int, timeout: float = 30.0) -> tuple[list[bytes], list[int]]:
    """Receive ``count`` frames; return their bytes and their recorded TCI."""
    bufs = np.zeros(32, np.int32)
    frames: list[bytes] = []
    tcis: list[int] = []

    def poll() -> bool:
        k = port.rx_burst(bufs)
        frames.extend(dp.frame(int(b)) for b in bufs[:k])
        tcis.extend(int(dp.meta[b, M_TCI]) for b in bufs[:k])
        dp.free(bufs[:k].copy(), k)
        return len(frames) >= count

    wait_for(poll, timeout=timeout, message=lambda: f"{count} frames (got {len(frames)})")
    return frames, tcis


def _tx(dp: Dataplane, port: PhyPort, frames: list[bytes]) -> None:
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    assert port.tx_burst(ids, len(frames)) == len(frames)


def test_vlan_tags_survive_both_ways(dp: Dataplane, veth: Veth) -> None:
    port = open_port(dp, "phy:0", iface=veth.local)
    assert port.fileno() is not None  # starts receiving
    assert isinstance(port, PhyPort)
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        frames = [numbered(i, size=64 + i, vlan=100 + i, pcp=i % 8) for i in range(8)]
        frames += [numbered(50, size=128), udp(vlan=0, pcp=5, size=90)]  # untagged; priority tag
        for f in frames:
            sock.send(f)
        got, tcis = _rx_all(dp, port, len(frames))
        assert got == frames
        assert tcis[:8] == [((i % 8) << 13) | (100 + i) for i in range(8)]
        assert tcis[8] == -1 and tcis[9] == 5 << 13
        _tx(dp, port, frames)
        assert recv_frames(sock, len(frames)) == frames
        st = port.stats_dict()
        assert st["rx_packets"] == st["tx_packets"] == len(frames)
        assert st["rx_bytes"] == st["tx_bytes"] == sum(len(f) for f in frames)
        assert port.fileno() is not None
        wait_for(lambda: port.check_link(force=True) == "up", timeout=5)  # carrier shows up late on new veths
    finally:
        sock.close()
        port.close()


def test_interface_deleted_then_recreated(dp: Dataplane, veth: Veth) -> None:
    port = open_port(dp, "phy:0", iface=veth.local)
    assert port.fileno() is not None  # starts receiving
    assert isinstance(port, PhyPort)
    sock = ns_packet_socket(veth.ns, veth.peer)
    bufs = np.zeros(32, np.int32)
    try:
        sock.send(numbered(1))
        assert _rx_all(dp, port, 1)[0] == [numbered(1)]
        sock.close()
        assert delete_link(veth.local)

        def gone() -> bool:
            assert port.rx_burst(bufs) == 0
            return port.describe()["link"] == "gone"

        wait_for(gone, timeout=5)
        assert port.fileno() is None
        ids = np.zeros(5, np.int32)
        dp.alloc(ids)
        assert port.tx_burst(ids, 5) == 5  # accepted and counted, not left to the caller
        assert port.stats_dict()["drops"] == {"link_down": 5}

        create_veth(veth.local, veth.peer, veth.ns, mtu=9000)
        wait_for(lambda: port.rx_burst(bufs) == 0 and port.describe()["link"] == "up", timeout=5)
        assert port.reopens == 1
        sock = ns_packet_socket(veth.ns, veth.peer)
        sock.send(numbered(2))
        assert _rx_all(dp, port, 1)[0] == [numbered(2)]
        _tx(dp, port, [numbered(3)])
        assert recv_frames(sock, 1) == [numbered(3)]
    finally:
        sock.close()
        port.close()


def test_link_down_counts_and_recovers(dp: Dataplane, veth: Veth) -> None:
    from spp.testing.netns import link_up

    port = open_port(dp, "phy:0", iface=veth.local)

    assert port.fileno() is not None  # starts receiving
    assert isinstance(port, PhyPort)
    try:
        link_up(veth.local, up=False)
        assert port.check_link(force=True) == "down"
        ids = np.zeros(3, np.int32)
        dp.alloc(ids)
        assert port.tx_burst(ids, 3) == 3
        assert port.stats_dict()["drops"] == {"link_down": 3}
        link_up(veth.local)
        wait_for(lambda: port.check_link(force=True) == "up", timeout=5)
        assert port.reopens == 0
    finally:
        port.close()


def test_multi_queue_fanout_splits_flows(dp: Dataplane, veth: Veth) -> None:
    q0 = open_port(dp, "phy:0", iface=veth.local)
    q1 = open_port(dp, "phy:0nq1", iface=veth.local)
    assert q0.fileno() is not None and q1.fileno() is not None  # both start receiving
    assert isinstance(q0, PhyPort) and isinstance(q1, PhyPort)
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        frames = [numbered(i, sip=f"10.1.{i}.1", sport=1000 + i) for i in range(64)]
        for f in frames:
            sock.send(f)
        bufs = np.zeros(32, np.int32)
        seen: dict[int, set[int]] = {0: set(), 1: set()}

        def poll() -> bool:
            for q, port in ((0, q0), (1, q1)):
                k = port.rx_burst(bufs)
                seen[q].update(frame_number(dp.frame(int(b))) for b in bufs[:k])
                dp.free(bufs[:k].copy(), k)
            return len(seen[0]) + len(seen[1]) >= len(frames)

        wait_for(poll, timeout=30)
        assert seen[0] | seen[1] == set(range(64)) and not seen[0] & seen[1]
        assert seen[0] and seen[1], "hash fanout should give each queue some of 64 flows"
        assert q0.stats_dict()["rx_packets"] == 64  # one counter row per phy:N
        assert q1.describe()["fanout_group"] == q0.describe()["fanout_group"]
    finally:
        sock.close()
        q0.close()
        q1.close()


def test_rx_without_buffers_counts_nombuf(veth: Veth) -> None:
    with stack(n_bufs=64) as dp:
        port = open_port(dp, "phy:0", iface=veth.local)
        assert port.fileno() is not None  # starts receiving
        sock = ns_packet_socket(veth.ns, veth.peer)
        hold = np.zeros(64, np.int32)
        try:
            assert dp.alloc(hold) == 64
            for i in range(5):
                sock.send(numbered(i))
            bufs = np.zeros(32, np.int32)
            wait_for(lambda: port.rx_burst(bufs) == 0 and port.stats_dict()["drops"].get("nombuf") == 5,
                     timeout=10)
        finally:
            dp.free(hold)
            sock.close()
            port.close()


def test_oversize_tx_is_counted_not_sent(dp: Dataplane, veth: Veth) -> None:
    from spp.testing.netns import in_netns

    port = open_port(dp, "phy:0", iface=veth.local)

    assert port.fileno() is not None  # starts receiving
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        with open(f"/sys/class/net/{veth.local}/mtu", "w") as f:
            f.write("1500")
        assert isinstance(port, PhyPort)
        port.check_link(force=True)  # re-reads the MTU
        big, ok = numbered(1, size=1600), numbered(2, size=1514)
        assert len(big) <= DATA_ROOM
        _tx(dp, port, [big, ok, b"\x00" * 10])
        assert recv_frames(sock, 1) == [ok]
        assert port.stats_dict()["drops"] == {"too_long": 1, "runt": 1}
        assert in_netns(veth.ns, lambda: True)
    finally:
        sock.close()
        port.close()


def test_errors_are_explained(dp: Dataplane) -> None:
    with pytest.raises(PortError, match="does not exist"):
        open_port(dp, "phy:0", iface="nosuchif0")
    dp.set_config({"phy": ["lo"]})
    with pytest.raises(PortError, match=r"no interface 3 \(it has: phy:0=lo\).*--phy"):
        open_port(dp, "phy:3")
    with pytest.raises(PortError, match="invalid interface name"):
        open_port(dp, "phy:0", iface="x" * 20)


def test_a_tx_only_user_takes_no_rx_share(dp: Dataplane, veth: Veth) -> None:
    """Two users of phy:0 (e.g. spp-vf receiving, spp-mirror only sending): the receiver sees everything."""
    rx_user = open_port(dp, "phy:0", iface=veth.local)
    tx_user = open_port(dp, "phy:0nq1", iface=veth.local)
    assert isinstance(rx_user, PhyPort) and isinstance(tx_user, PhyPort)
    assert rx_user.fileno() is not None
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        _tx(dp, tx_user, [numbered(900)])
        assert recv_frames(sock, 1) == [numbered(900)]
        frames = [numbered(i, sip=f"10.3.{i}.1", sport=3000 + i) for i in range(32)]
        for f in frames:
            sock.send(f)
        assert _rx_all(dp, rx_user, len(frames))[0] == frames
        assert tx_user.describe()["rx_open"] is False and tx_user.describe()["tx_open"] is True
    finally:
        sock.close()
        rx_user.close()
        tx_user.close()


def test_link_flaps_under_concurrent_rx_and_tx(dp: Dataplane, veth: Veth) -> None:
    """Delete and recreate the interface while two threads hammer rx and tx: no crash, every frame counted."""
    import threading

    from spp.runtime.stats import total_drops

    port = open_port(dp, "phy:0", iface=veth.local)
    assert isinstance(port, PhyPort)
    stop = threading.Event()
    errors: list[BaseException] = []
    offered = [0]
    refused = [0]

    def rx_loop() -> None:
        bufs = np.zeros(32, np.int32)
        try:
            while not stop.is_set():
                k = port.rx_burst(bufs)
                dp.free(bufs[:k].copy(), k)
        except BaseException as e:
            errors.append(e)

    def tx_loop() -> None:
        bufs = np.zeros(32, np.int32)
        frame = numbered(7)
        try:
            while not stop.is_set():
                n = dp.alloc(bufs)
                for b in bufs[:n]:
                    dp.write_frame(int(b), frame)
                k = port.tx_burst(bufs, n)
                offered[0] += n
                if k < n:
                    refused[0] += n - k
                    dp.free(bufs[k:n].copy(), n - k)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=rx_loop), threading.Thread(target=tx_loop)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            wait_for(lambda: port.stats_dict()["tx_packets"] > 0, timeout=10)
            delete_link(veth.local)
            wait_for(lambda: port.check_link(force=True) == "gone", timeout=5)
            create_veth(veth.local, veth.peer, veth.ns, mtu=9000)
            wait_for(lambda: port.check_link(force=True) != "gone", timeout=5)
    finally:
        stop.set()
        for t in threads:
            t.join()
        port.close()
    assert not errors, errors
    st = port.stats_dict()
    assert st["drops"].get("link_down", 0) > 0  # type: ignore[union-attr]
    # Nothing is sent towards us, so every drop on this port is a transmitted frame lost to the flaps.
    assert offered[0] == st["tx_packets"] + refused[0] + total_drops(port.stats)
    assert port.reopens == 3


def test_compiled_worker_drives_phy_through_a_flap(dp: Dataplane, veth: Veth) -> None:
    """A worker forwarding ring → phy:0 → ring runs the compiled loop; a deleted and recreated
    interface is counted ``link_down``, reopened, and every frame stays accounted."""
    from spp.components.forward import Forward
    from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
    from spp.ports.base import PortTable
    from spp.runtime.stats import total_drops

    pt = PortTable(dp)
    phy, rin, rout = open_port(dp, "phy:0", iface=veth.local), pt.get("ring:0"), pt.get("ring:1")
    assert isinstance(phy, PhyPort)
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

    def send(frames: list[bytes]) -> None:
        _tx_ring(dp, rin, frames)

    try:
        plan = WorkerPlan((ComponentPlan(Forward(dp, "in", 0), (Attachment(phy),), (Attachment(rout),)),
                           ComponentPlan(Forward(dp, "out", 0), (Attachment(rin),), (Attachment(phy),))), 1)
        w.publish(plan, timeout=300)
        assert w._native is not None  # the compiled loop drives phy:0
        wait_for(lambda: phy.describe()["rx_open"], timeout=10)
        there = [numbered(i, size=60 + i, vlan=(i % 3) * 100) for i in range(40)]
        for f in there:
            sock.send(f)
        wait_for(lambda: drain(len(there)), timeout=30, message=lambda: f"{len(got)} of {len(there)}")
        assert got == there  # VLAN tags restored from the ring's auxdata
        back = [numbered(1000 + i, size=64 + i) for i in range(20)]
        send(back)
        assert recv_frames(sock, len(back)) == back
        sock.close()

        assert delete_link(veth.local)
        wait_for(lambda: phy.describe()["link"] == "gone", timeout=5)
        send([numbered(5000 + i) for i in range(7)])
        wait_for(lambda: phy.stats_dict()["drops"] == {"link_down": 7}, timeout=10,
                 message=lambda: f"phy:0 {phy.stats_dict()}")
        create_veth(veth.local, veth.peer, veth.ns, mtu=9000)
        wait_for(lambda: phy.describe()["link"] == "up" and phy.describe()["rx_open"], timeout=10)
        assert phy.reopens == 1 and w._native is not None and w.error is None
        sock = ns_packet_socket(veth.ns, veth.peer)
        send([numbered(6000)])
        assert recv_frames(sock, 1) == [numbered(6000)]
        w.publish(WorkerPlan((), 2))
    finally:
        w.stop()
        sock.close()
        phy.close()
        pt.close_all()
    assert w.error is None
    st = phy.stats_dict()
    assert st["tx_packets"] + total_drops(phy.stats) == 20 + 7 + 1


def _tx_ring(dp: Dataplane, ring: object, frames: list[bytes]) -> None:
    from spp.ports.base import Port

    assert isinstance(ring, Port)
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    assert ring.tx_burst(ids, len(frames)) == len(frames)


def test_an_observer_outside_the_fanout_counts_privately(dp: Dataplane, veth: Veth) -> None:
    """spp-pcap's capture socket (fanout=False) sees every frame the port's user receives, and
    counts them in its own row: phy:N's shared counters count each frame once."""
    from spp.runtime.stats import RX_PACKETS

    user = open_port(dp, "phy:0", iface=veth.local)
    observer = PhyPort(dp, user.id, iface=veth.local, fanout=False)
    assert user.fileno() is not None and observer.fileno() is not None
    sock = ns_packet_socket(veth.ns, veth.peer)
    try:
        frames = [numbered(i) for i in range(20)]
        for f in frames:
            sock.send(f)
        assert _rx_all(dp, user, 20)[0] == frames
        assert _rx_all(dp, observer, 20)[0] == frames
        assert int(dp.stats[user.slot, RX_PACKETS]) == 20 == int(user.stats[RX_PACKETS])
        assert int(observer.stats[RX_PACKETS]) == 20
    finally:
        sock.close()
        observer.close()
        user.close()
