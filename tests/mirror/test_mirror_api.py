"""The port-mirroring API: directions, filters, snaplen, statistics, refusals, live changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.mirror import FlowMatch, MirrorAgent, MirrorError, list_mirrors
from spp.ports.base import Port, PortTable
from spp.ports.ring import RingPort, drain_ring
from spp.runtime.dataplane import M_ORIGLEN, M_ORIGPORT, Dataplane
from spp.runtime.stats import RX_PACKETS, TX_PACKETS, drop_field, total_drops
from spp.testing import stack, wait_for
from spp.testing.memport import MemoryPort
from spp.testing.packets import frame_number, numbered, udp

STATS = ("packets", "filtered", "nombuf", "full", "errors")


@pytest.fixture
def agent(dp: Dataplane) -> Iterator[MirrorAgent]:
    pt = PortTable(dp)
    a = MirrorAgent(dp, pt)
    try:
        yield a
    finally:
        a.close()
        for p in pt.all():
            if isinstance(p, RingPort):
                drain_ring(dp, p.id.index)
        pt.close_all()


def _receive(port: Port, n: int = 64) -> int:
    """One rx burst through ``port`` (runs its rx callbacks); frees what came."""
    bufs = np.zeros(n, np.int32)
    k = port.rx_burst(bufs, n)
    port.dp.free(bufs, k)
    return k


def _transmit(port: Port, frames: list[bytes]) -> int:
    """One tx burst of ``frames`` through ``port`` (runs its tx callbacks); frees what it refused."""
    dp = port.dp
    bufs = np.zeros(len(frames), np.int32)
    assert dp.alloc(bufs) == len(frames)
    for b, f in zip(bufs, frames, strict=True):
        dp.write_frame(int(b), f)
    k = port.tx_burst(bufs, len(frames))
    if k < len(frames):
        dp.free(bufs[k:].copy())
    return k


def _sum(stats: dict[str, int]) -> int:
    return sum(stats[s] for s in STATS)


@pytest.mark.parametrize("direction", ["rx", "tx", "both"])
def test_directions_on_memory_ports(dp: Dataplane, agent: MirrorAgent, direction: str) -> None:
    src, mon = MemoryPort(dp, 0), MemoryPort(dp, 1)
    agent.register("m", src, mon, direction)
    rx_frames = [numbered(i) for i in range(10)]
    tx_frames = [numbered(100 + i, size=200) for i in range(7)]
    src.inject(rx_frames)
    assert _receive(src) == 10
    assert _transmit(src, tx_frames) == 7
    want = {"rx": rx_frames, "tx": tx_frames, "both": rx_frames + tx_frames}[direction]
    assert mon.sent == want
    assert src.sent == tx_frames  # the original path is untouched
    assert agent.stats("m") == {"packets": len(want), "filtered": 0, "nombuf": 0, "full": 0, "errors": 0}
    assert agent.mirrors()[0]["shared"] is False


def test_rx_mirror_sees_frames_before_other_callbacks(dp: Dataplane, agent: MirrorAgent) -> None:
    src, mon = MemoryPort(dp, 0), MemoryPort(dp, 1)

    def drop_all(port: Port, bufs: np.ndarray, n: int) -> int:
        dp.free(bufs[:n].copy(), n)
        port.count_drop("filtered", n)
        return 0

    src.add_rx_callback(drop_all)
    agent.register("m", src, mon, "rx")
    src.inject([numbered(i) for i in range(5)])
    assert _receive(src) == 0
    assert [frame_number(f) for f in mon.sent] == list(range(5))
    assert src.stats_dict()["drops"] == {"filtered": 5}


@pytest.mark.parametrize("copy", ["shallow", "deep"])
def test_shared_mirror_on_rings_and_null(dp: Dataplane, agent: MirrorAgent, copy: str) -> None:
    pt = agent.ports
    src = pt.get("nullpmd:0", template=numbered(5))
    agent.register("m", "nullpmd:0", "ring:1", "rx", copy=copy)
    agent.register("n", "nullpmd:0", "nullpmd:2", "rx", copy=copy)
    assert agent.attached() == ["m", "n"]
    assert _receive(src, 32) == 32
    ring = pt.get("ring:1")
    assert isinstance(ring, RingPort) and ring.count == 32
    bufs = np.zeros(32, np.int32)
    assert ring.rx_burst(bufs, 32) == 32
    assert dp.frame(int(bufs[0])) == numbered(5)
    dp.free(bufs)
    assert int(dp.stats[pt.get("nullpmd:2").slot, TX_PACKETS]) == 32
    for m in list_mirrors(dp):
        assert m["shared"] and m["stats"] == {"packets": 32, "filtered": 0, "nombuf": 0, "full": 0, "errors": 0}
        assert m["copy"] == copy


FRAMES = [
    udp("52:54:00:00:00:0a", "52:54:00:00:00:01", sip="10.0.0.1", dip="10.0.1.1", sport=1000, dport=53),
    udp("52:54:00:00:00:0b", "52:54:00:00:00:02", sip="10.0.0.2", dip="10.0.1.2", sport=1001, dport=80),
    udp("52:54:00:00:00:0a", "52:54:00:00:00:02", sip="192.168.0.1", dip="10.0.1.1", sport=1002, dport=53, vlan=9),
    udp("52:54:00:00:00:0c", "52:54:00:00:00:01", sip="10.0.0.3", dip="10.0.1.3", sport=1003, dport=53, vlan=20),
    udp("52:54:00:00:00:0c", "52:54:00:00:00:03", sip="10.0.0.3", dip="10.0.1.3", sport=1004, dport=443, vlan=28),
    udp("52:54:00:00:00:0a", "52:54:00:00:00:01", sip="10.0.0.1", dip="10.0.1.1", sport=1005, dport=53,
        vlan=4095),
    bytes.fromhex("52540000000a525400000001") + b"\x86\xdd" + bytes(60),  # IPv6: only MAC filters match it
]


@pytest.mark.parametrize(("kwargs", "expect"), [
    ({"src_mac": "52:54:00:00:00:01"}, [0, 3, 5, 6]),
    ({"dst_mac": "52:54:00:00:00:0A"}, [0, 2, 5, 6]),
    ({"vlan": "9,18-27"}, [2, 3]),
    ({"vlan": "0-4095"}, [2, 3, 4, 5]),
    ({"flow": FlowMatch("udp", None, None, "10.0.1.0/24", 53)}, [0, 2, 3, 5]),
    ({"flow": "udp 10.0.0.0/24 * * 53"}, [0, 3, 5]),
    ({"flow": FlowMatch(src="10.0.0.2")}, [1]),
    ({"flow": "tcp * * * *"}, []),
    ({"flow": "17 * 1004 * 443"}, [4]),
    ({"src_mac": "52:54:00:00:00:01", "vlan": "1-4095", "flow": "udp * * * 53"}, [3, 5]),
])
def test_builtin_filters(dp: Dataplane, agent: MirrorAgent, kwargs: dict[str, Any], expect: list[int]) -> None:
    src, mon = MemoryPort(dp, 0), MemoryPort(dp, 1)
    agent.register("f", src, mon, "rx", **kwargs)
    src.inject(FRAMES)
    assert _receive(src) == len(FRAMES)
    assert mon.sent == [FRAMES[i] for i in expect]
    st = agent.stats("f")
    assert st == {"packets": len(expect), "filtered": len(FRAMES) - len(expect), "nombuf": 0, "full": 0, "errors": 0}


def test_python_filter_gets_context_and_lock_is_taken(dp: Dataplane, agent: MirrorAgent) -> None:
    class CountingLock:
        def __init__(self) -> None:
            self.inner = threading.Lock()
            self.entered = 0

        def __enter__(self) -> None:
            self.inner.acquire()
            self.entered += 1

        def __exit__(self, *exc: object) -> None:
            self.inner.release()

    ctx = {"wanted": 3}
    seen: list[Any] = []

    def every_third(d: Dataplane, ids: np.ndarray, context: Any) -> np.ndarray:
        seen.append(context)
        assert lock.inner.locked()
        numbers = np.array([frame_number(d.frame(int(b))) for b in ids])  # slow path: fine for a test
        return numbers % context["wanted"] == 0

    lock = CountingLock()
    src, mon = MemoryPort(dp, 0), MemoryPort(dp, 1)
    agent.register("py", src, mon, "rx", filter=every_third, context=ctx, lock=lock, dst_mac="52:54:00:12:34:56")
    src.inject([numbered(i) for i in range(30)] + [numbered(99, dst="52:54:00:00:00:99")])
    assert _receive(src) == 31
    assert [frame_number(f) for f in mon.sent] == list(range(0, 30, 3))
    assert seen == [ctx] and lock.entered == 1
    assert agent.stats("py") == {"packets": 10, "filtered": 21, "nombuf": 0, "full": 0, "errors": 0}

    agent.unregister("py")
    agent.register("bad", src, MemoryPort(dp, 2), "rx", filter=lambda d, ids, c: np.ones(3, bool))
    src.inject([numbered(0), numbered(1)])
    assert _receive(src, 1) == 1  # the original passes; the mirror reports and disables itself
    assert _receive(src, 1) == 1
    assert not src.has_callbacks
    [bad] = agent.mirrors()
    assert bad["stats"] == {"packets": 0, "filtered": 0, "nombuf": 0, "full": 0, "errors": 1}
    assert "must return one boolean per buffer id, shape (1,)" in bad["error"]
    agent.unregister("bad")


def test_snaplen_truncates_and_records_origin(dp: Dataplane, agent: MirrorAgent) -> None:
    src = MemoryPort(dp, 3)
    agent.register("snap", src, "ring:2", "rx", snaplen=64)
    frames = [numbered(i, size=100 + i) for i in range(5)] + [numbered(9, size=60)]
    src.inject(frames)
    assert _receive(src) == 6
    ring = agent.ports.get("ring:2")
    bufs = np.zeros(8, np.int32)
    assert ring.rx_burst(bufs, 8) == 6
    for b, f in zip(bufs[:6], frames, strict=True):
        assert dp.frame(int(b)) == f[:64]
        assert dp.meta[b, M_ORIGLEN] == len(f)
        assert dp.meta[b, M_ORIGPORT] == src.slot
    dp.free(bufs, 6)


def test_stats_add_up_with_full_and_nombuf() -> None:
    with stack(n_bufs=64) as dp, MirrorAgent(dp) as agent:
        src, mon = MemoryPort(dp, 0), MemoryPort(dp, 1, tx_room=5)
        agent.register("m", src, mon, "rx", copy="deep", vlan="7")
        burst = [numbered(i, vlan=7) for i in range(10)] + [numbered(i) for i in range(2)]
        src.inject(burst)
        assert _receive(src) == 12  # 10 copies: the monitor takes 5, refuses 5
        hoard = np.zeros(64, np.int32)
        held = dp.alloc(hoard, 64 - 12)  # leave room for the originals only
        src.inject(burst)
        assert _receive(src) == 12  # 10 copies find no buffer
        dp.free(hoard, held)
        st = agent.stats("m")
        assert st == {"packets": 5, "filtered": 4, "nombuf": 10, "full": 5, "errors": 0}
        assert _sum(st) == int(src.stats[RX_PACKETS]) == 24
        assert mon.stats_dict()["drops"] == {"mirror_full": 5}


def test_refusals_are_clear(dp: Dataplane, agent: MirrorAgent) -> None:
    agent.register("a", "ring:0", "ring:1")
    with pytest.raises(MirrorError, match="to itself"):
        agent.register("b", "ring:3", "ring:3")
    with pytest.raises(MirrorError, match="already mirrored to ring:1"):
        agent.register("b", "ring:0", "ring:1", "rx")
    with pytest.raises(MirrorError, match="already mirrored to ring:1"):
        agent.register("b", agent.ports.get("ring:0"), agent.ports.get("ring:1"), "rx",
                       filter=lambda d, i, c: i > 0)
    with pytest.raises(MirrorError, match="'a' already exists"):
        agent.register("a", "ring:2", "ring:1")
    with pytest.raises(MirrorError, match=r"unknown source port: ring:99 out of range: index must be 0\.\.15"):
        agent.register("b", "ring:99", "ring:1")
    with pytest.raises(MirrorError, match=r"unknown destination port.*unknown type 'eth'"):
        agent.register("b", "ring:2", "eth:1")
    with pytest.raises(MirrorError, match="use rx, tx or both"):
        agent.register("b", "ring:2", "ring:1", "in")
    with pytest.raises(MirrorError, match="like 18-27"):
        agent.register("b", "ring:2", "ring:1", vlan="9,x")
    with pytest.raises(MirrorError, match="reversed"):
        agent.register("b", "ring:2", "ring:1", vlan="27-18")
    with pytest.raises(MirrorError, match="must be a MAC address XX:XX:XX:XX:XX:XX"):
        agent.register("b", "ring:2", "ring:1", src_mac="52:54:00")
    with pytest.raises(MirrorError, match="5 fields"):
        agent.register("b", "ring:2", "ring:1", flow="udp 10.0.0.1")
    with pytest.raises(MirrorError, match="snaplen"):
        agent.register("b", "ring:2", "ring:1", snaplen=5)
    with pytest.raises(MirrorError, match="shared=False"):
        agent.register("b", "ring:2", "ring:1", filter=lambda d, i, c: i > 0, shared=True)
    with pytest.raises(MirrorError, match="no mirror 'zz'; registered: a"):
        agent.unregister("zz")
    assert [m["name"] for m in agent.mirrors()] == ["a"]


@pytest.mark.parametrize("shared", [True, False])
def test_register_unregister_under_load_loses_nothing(dp: Dataplane, shared: bool) -> None:
    pt = PortTable(dp)
    src, out = pt.get("nullpmd:0"), pt.get("nullpmd:1")
    agent = MirrorAgent(dp, pt, interval=0.001)
    agent.start()
    w = Worker(dp, 0, pin=False)
    w.start()
    totals = dict.fromkeys(STATS, 0)
    try:
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(out),)),), 1),
                  timeout=120)
        for i in range(40):
            copy = "deep" if i % 2 else "shallow"
            direction = ("rx", "tx", "both")[i % 3]
            source = "nullpmd:0" if direction == "rx" else "nullpmd:1"
            if shared:
                agent.register("live", source, "nullpmd:3", direction, copy=copy)
            else:
                agent.register("live", pt.get(source), pt.get("nullpmd:3"), direction, copy=copy)
            before = int(src.stats[RX_PACKETS])
            wait_for(lambda b=before: int(src.stats[RX_PACKETS]) > b + 500, timeout=60)  # type: ignore[misc]
            for k, v in agent.stats("live").items():
                totals[k] += v
            agent.unregister("live")
        assert agent.attached() == []
        wait_for(lambda: w._native is not None, timeout=10)  # back on the compiled path
        w.publish(WorkerPlan((), 2))
    finally:
        w.stop()
        agent.close()
    assert w.error is None
    rx = int(src.stats[RX_PACKETS])
    assert rx == int(out.stats[TX_PACKETS]) and total_drops(out.stats) == 0  # original path: nothing lost
    assert totals["packets"] > 0
    assert int(dp.stats[pt.get("nullpmd:3").slot, drop_field("mirror_full")]) == totals["full"] == 0
