"""Classifier, template null sources, port mirrors and VLAN operations in the compiled worker loop.

Each scenario checks its counters and frames against expectations.  Most also run a
second time with a pass-through Python callback on a port (called from the loop once
per burst, :mod:`spp.graph.pyhook`): the callback must change nothing anyone can see.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from spp.components.classifier import Classifier, build_table
from spp.components.forward import Forward, Merge
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import Port, PortTable
from spp.ports.null import NullPort
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import DROP_BASE, REASON, RX_PACKETS, TX_PACKETS
from spp.testing import stack, wait_for
from spp.testing.packets import ether, mac_bytes, numbered

A, B, C, D = "52:54:00:00:00:0a", "52:54:00:00:00:0b", "52:54:00:00:00:0c", "52:54:00:00:00:0d"
BCAST = "ff:ff:ff:ff:ff:ff"


def _mac(s: str) -> int:
    return int.from_bytes(mac_bytes(s), "big")


def _frames() -> list[bytes]:
    """Frames covering every classifier decision: hits, default, VLAN, flood, runts."""
    out: list[bytes] = []
    for i in range(40):
        out.append(numbered(i, dst=A))
        out.append(numbered(100 + i, dst=B))
        out.append(numbered(200 + i, dst=D))  # unknown unicast: untagged default
        out.append(numbered(300 + i, dst=BCAST))  # flood: 3 copies
        out.append(ether(C, A, 0x0800, bytes(46), vlan=10))  # VLAN 10 hit
        out.append(ether(D, A, 0x0800, bytes(46), vlan=20))  # VLAN without table: untagged default
        out.append(ether(BCAST, A, 0x0800, bytes(46), vlan=10))  # VLAN flood + untagged default
    out += [bytes(12)] * 5  # runt
    out += [bytes(12) + b"\x81\x00" + bytes(2)] * 3  # tagged runt
    return out


def _load(dp: Dataplane, port: Port, frames: list[bytes]) -> None:
    ids = np.zeros(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    assert port.tx_burst(ids, len(frames)) == len(frames)


def _drain(dp: Dataplane, index: int) -> list[bytes]:
    buf = np.empty(dp.layout.ring_size, np.int32)
    k = int(ringcore.ring_dequeue(dp.ring_ctrl[index], dp.ring_slots[index], buf, 0, len(buf)))
    frames = [dp.frame(int(b)) for b in buf[:k]]
    dp.free(buf, k)
    return frames


def _classifier_run(native: bool) -> dict[str, Any]:
    """ring:0 → c1 → [nullpmd:1, ring:1, nullpmd:2]; ring:2 → c2 (no default) → nullpmd:3."""
    with stack(n_bufs=4096, ring_size=1024) as dp:
        pt = PortTable(dp)
        src1, src2 = pt.get("ring:0"), pt.get("ring:2")
        outs = [pt.get("nullpmd:1"), pt.get("ring:1"), pt.get("nullpmd:2")]
        sink = pt.get("nullpmd:3")
        frames = _frames()
        _load(dp, src1, frames)
        _load(dp, src2, frames)
        if not native:
            src1.add_rx_callback(lambda port, bufs, n: n)
        t1 = build_table([(None, _mac(A), 0), (None, _mac(B), 1), (None, -1, 2), (10, _mac(C), 1)])
        c1 = Classifier(dp, "c1", 0).with_table(t1)
        c2 = Classifier(dp, "c2", 0).with_table(build_table([(None, _mac(A), 0)]))
        plan = WorkerPlan((ComponentPlan(c1, (Attachment(src1),), tuple(Attachment(p) for p in outs)),
                           ComponentPlan(c2, (Attachment(src2),), (Attachment(sink),))), 1)
        w = Worker(dp, 0, pin=False)
        w.start()
        try:
            w.publish(plan, timeout=120)
            assert w.path == ("native", None), w.path
            n = len(frames)
            wait_for(lambda: int(src1.stats[RX_PACKETS]) == n and int(src2.stats[RX_PACKETS]) == n, timeout=120,
                     message="every loaded frame received")
            w.publish(WorkerPlan((), 2))
        finally:
            w.stop()
        assert w.error is None
        delivered = sorted(_drain(dp, 1))
        ports = {str(p.id): p.stats.copy() for p in (src1, src2, *outs, sink)}
        pt.close_all()
        return {"ports": ports, "c1": c1.drops.copy(), "c2": c2.drops.copy(), "ring1": delivered, "n": n}


def test_classifier_counts_and_a_python_callback_changes_nothing() -> None:
    nat = _classifier_run(True)
    py = _classifier_run(False)
    for name, row in nat["ports"].items():
        assert np.array_equal(row, py["ports"][name]), name
    assert np.array_equal(nat["c1"], py["c1"])
    assert np.array_equal(nat["c2"], py["c2"])
    assert nat["ring1"] == py["ring1"]
    n = nat["n"]
    c1, c2 = nat["c1"], nat["c2"]
    assert int(c1[REASON["runt"]]) == 8 and int(c1[REASON["no_route"]]) == 0
    assert int(c2[REASON["runt"]]) == 8
    # c1: 40 of each kind; a broadcast untagged becomes 3 copies, a VLAN-10 broadcast 2 (ring:1 + default)
    sent1 = sum(int(nat["ports"][p][TX_PACKETS]) for p in ("nullpmd:1", "ring:1", "nullpmd:2"))
    assert sent1 == n - 8 + 40 * 2 + 40 * 1
    sink = int(nat["ports"]["nullpmd:3"][TX_PACKETS])
    assert sink + int(c2[REASON["no_route"]]) + 8 == n  # every frame delivered or counted once
    assert sink == 80  # hits on A and untagged broadcasts (flooded to c2's only port)


def _native_null_templates(native: bool, tmpls: list[bytes], iters: int) -> tuple[list[bytes], int]:
    with stack(n_bufs=1024, ring_size=1024) as dp:
        pt = PortTable(dp)
        src = pt.get("nullpmd:0", templates=tmpls)
        assert isinstance(src, NullPort)
        dst = pt.get("ring:0")
        if not native:
            src.add_rx_callback(lambda port, bufs, n: n)
        w = Worker(dp, 0, pin=False)
        w.start()
        try:
            w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(dst),)),), 1),
                      timeout=120)
            assert w.path == ("native", None), w.path
            wait_for(lambda: int(dst.stats[TX_PACKETS]) + int(dst.stats[DROP_BASE:].sum()) >= iters, timeout=120,
                     message="frames into ring:0")
            w.publish(WorkerPlan((), 2))
        finally:
            w.stop()
        got = _drain(dp, 0)
        rx = int(src.stats[RX_PACKETS])
        assert rx == int(dst.stats[TX_PACKETS]) + int(dst.stats[REASON["ring_full"]])
        pt.close_all()
        return got, rx


@pytest.mark.parametrize("native", [True, False])
def test_null_templates_cycle(native: bool) -> None:
    tmpls = [numbered(i, dst=f"52:54:00:00:01:{i:02x}") for i in range(7)]
    got, _ = _native_null_templates(native, tmpls, 300)
    assert len(got) >= 300
    assert got == [tmpls[i % 7] for i in range(len(got))]  # in order, cycling, from the first


def test_null_templates_checked() -> None:
    with stack() as dp:
        pt = PortTable(dp)
        with pytest.raises(ValueError, match="same size"):
            pt.get("nullpmd:0", templates=[numbered(0), numbered(1, size=128)])
        with pytest.raises(ValueError, match="empty"):
            pt.get("nullpmd:1", templates=[])
        pt.close_all()


def test_classifier_chain_native_hitless_table_change() -> None:
    """nullpmd (templates) → classifier → 2 rings → merge → nullpmd, natively; table swaps lose nothing."""
    with stack(n_bufs=8192, ring_size=1024) as dp:
        pt = PortTable(dp)
        macs = [f"52:54:00:00:02:{i:02x}" for i in range(8)]
        src = pt.get("nullpmd:0", templates=[numbered(i, dst=m) for i, m in enumerate(macs)])
        r0, r1, dst = pt.get("ring:0"), pt.get("ring:1"), pt.get("nullpmd:1")
        base = Classifier(dp, "cls", 0)
        merge = Merge(dp, "mg", 0)
        w = Worker(dp, 0, pin=False)
        w.start()
        try:
            for gen in range(1, 6):
                entries = [(None, _mac(m), (i + gen) % 2) for i, m in enumerate(macs)]
                plan = WorkerPlan((ComponentPlan(base.with_table(build_table(entries)), (Attachment(src),),
                                                 (Attachment(r0), Attachment(r1))),
                                   ComponentPlan(merge, (Attachment(r0), Attachment(r1)), (Attachment(dst),))), gen)
                w.publish(plan, timeout=120)
                assert w._native is not None
                start = int(dst.stats[TX_PACKETS])
                wait_for(lambda s=start: int(dst.stats[TX_PACKETS]) > s + 1000, timeout=120)  # type: ignore[misc]
            w.publish(WorkerPlan((), 99))
        finally:
            w.stop()
        assert w.error is None
        left = _drain(dp, 0) + _drain(dp, 1)
        rx = int(src.stats[RX_PACKETS])
        drops = sum(int(p.stats[DROP_BASE:].sum()) for p in (r0, r1, dst)) + int(base.drops.sum())
        assert rx == int(dst.stats[TX_PACKETS]) + len(left) + drops
        assert drops == 0
        pt.close_all()


def _mirror_run(native: bool) -> dict[str, Any]:
    """ring:0 → forward → nullpmd:1 with five port mirrors: rx shallow → ring:3, tx filtered → nullpmd:4,
    tx shallow → ring:5 (nearly full: some copies refused), rx shallow filtered → nullpmd:6,
    tx shallow → nullpmd:7."""
    from spp.mirror.engine import PortMirror
    from spp.mirror.filters import MatchSpec

    with stack(n_bufs=4096, ring_size=1024) as dp:
        pt = PortTable(dp)
        src, dst = pt.get("ring:0"), pt.get("nullpmd:1")
        r3, n4, r5, n6 = pt.get("ring:3"), pt.get("nullpmd:4"), pt.get("ring:5"), pt.get("nullpmd:6")
        n7, r2, n8 = pt.get("nullpmd:7"), pt.get("ring:2"), pt.get("nullpmd:8")
        frames = _frames()
        _load(dp, src, frames)
        _load(dp, r5, [numbered(9999)] * 1000)
        mirrors = [PortMirror(dp, "m1", src, r3, "rx"),
                   PortMirror(dp, "m2", dst, n4, "tx", match=MatchSpec(dst_mac=A)),
                   PortMirror(dp, "m3", dst, r5, "tx"),
                   PortMirror(dp, "m4", src, n6, "rx", match=MatchSpec(dst_mac=B)),
                   PortMirror(dp, "m5", dst, n7, "tx"),
                   PortMirror(dp, "m6", src, r2, "rx", copy="deep", snaplen=40),
                   PortMirror(dp, "m7", dst, n8, "tx", copy="deep", match=MatchSpec(dst_mac=B))]
        for m in mirrors:
            m.attach()
        if not native:
            dst.add_tx_callback(lambda port, bufs, n: n)
        w = Worker(dp, 0, pin=False)
        w.start()
        try:
            w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(dst),)),), 1),
                      timeout=120)
            assert w.path == ("native", None), w.path
            n = len(frames)
            wait_for(lambda: int(dst.stats[TX_PACKETS]) == n, timeout=120, message="every frame forwarded")
            w.publish(WorkerPlan((), 2))
        finally:
            w.stop()
        assert w.error is None
        for m in mirrors:
            m.detach()
        out = {"ports": {str(p.id): p.stats.copy() for p in (src, dst, r3, n4, r5, n6, n7, r2, n8)},
               "mirrors": [m.stats.copy() for m in mirrors], "r3": _drain(dp, 3), "r5": _drain(dp, 5),
               "r2": _drain(dp, 2), "n": n}
        pt.close_all()
        return out


def test_port_mirrors_counts_and_a_python_callback_changes_nothing() -> None:
    nat = _mirror_run(True)
    py = _mirror_run(False)
    for name, row in nat["ports"].items():
        assert np.array_equal(row, py["ports"][name]), name
    for a, b in zip(nat["mirrors"], py["mirrors"], strict=True):
        assert np.array_equal(a, b)
    assert nat["r3"] == py["r3"] and nat["r5"] == py["r5"] and nat["r2"] == py["r2"]
    n = nat["n"]
    m1, m2, m3, m4, m5, m6, m7 = nat["mirrors"]
    assert int(m6[0]) == n and nat["r2"] == [f[:40] for f in _frames()]  # deep, cut at snaplen
    assert int(m7[0]) == 40 == int(nat["ports"]["nullpmd:8"][TX_PACKETS])
    assert int(m1[0]) == n  # every received frame mirrored
    assert int(m2[0]) == 40 and int(m2[1]) == n - 40  # copies of the frames to A; the rest filtered
    assert int(m3[0]) == 24 and int(m3[3]) == n - 24  # ring:5 had room for 24 copies; the rest counted full
    assert int(nat["ports"]["ring:5"][REASON["mirror_full"]]) == n - 24
    assert len(nat["r5"]) == 1024
    assert (int(m4[0]), int(m4[1])) == (40, n - 40)
    assert int(nat["ports"]["nullpmd:6"][TX_PACKETS]) == 40
    assert int(m5[0]) == n == int(nat["ports"]["nullpmd:7"][TX_PACKETS])


def test_a_python_filter_runs_from_the_compiled_loop(dp: Dataplane) -> None:
    """A mirror with a Python burst filter runs in the compiled worker, the filter once per burst."""
    from spp.mirror.engine import PortMirror

    pt = PortTable(dp)
    src, dst, r2 = pt.get("ring:0"), pt.get("nullpmd:1"), pt.get("ring:2")
    frames = [numbered(i, dst=A if i % 3 else B) for i in range(300)]
    _load(dp, src, frames)
    calls: list[int] = []

    def only_a(dp: Dataplane, ids: np.ndarray, ctx: object) -> np.ndarray:
        calls.append(len(ids))
        return np.array([dp.frame(int(b))[:6] == mac_bytes(A) for b in ids], np.bool_)

    pf = PortMirror(dp, "p", src, r2, "rx", filter=only_a)
    pf.attach()
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(dst),)),), 1),
                  timeout=300)
        assert w.path == ("native", None)
        wait_for(lambda: int(dst.stats[TX_PACKETS]) == 300, timeout=120, message="every frame forwarded")
        w.publish(WorkerPlan((), 2))
    finally:
        w.stop()
    assert w.error is None
    pf.detach()
    assert sum(calls) == 300 and max(calls) <= 32  # once per burst
    assert int(pf.stats[0]) == 200 and int(pf.stats[1]) == 100
    assert _drain(dp, 2) == [f for f in frames if f[:6] == mac_bytes(A)]
    pt.close_all()


def _vlan_run(native: bool) -> dict[str, Any]:
    """ring:0 (rx del_vlantag, shallow rx mirror → ring:3) → forward → ring:1 (tx add_vlantag 101 pcp 3)."""
    from spp.components.vlan import VlanOp
    from spp.mirror.engine import PortMirror

    with stack(n_bufs=4096, ring_size=1024) as dp:
        pt = PortTable(dp)
        src, dst, r3 = pt.get("ring:0"), pt.get("ring:1"), pt.get("ring:3")
        frames = _frames()
        _load(dp, src, frames)
        pm = PortMirror(dp, "m", src, r3, "rx")  # shared buffers: the VLAN edit must copy them first
        pm.attach()
        if not native:
            src.add_rx_callback(lambda port, bufs, n: n)
        w = Worker(dp, 0, pin=False)
        w.start()
        try:
            plan = WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src, VlanOp("del")),),
                                             (Attachment(dst, VlanOp("add", 101, 3)),)),), 1)
            w.publish(plan, timeout=300)
            assert w.path == ("native", None), w.path
            n = len(frames)
            wait_for(lambda: int(dst.stats[TX_PACKETS]) + int(dst.stats[DROP_BASE:].sum()) == n, timeout=120,
                     message="every frame forwarded")
            w.publish(WorkerPlan((), 2))
        finally:
            w.stop()
        assert w.error is None
        pm.detach()
        out = {"ports": {str(p.id): p.stats.copy() for p in (src, dst, r3)}, "r1": _drain(dp, 1),
               "r3": _drain(dp, 3), "n": n, "frames": frames}
        pt.close_all()
        return out


def test_vlan_ops_and_a_python_callback_changes_nothing() -> None:
    nat = _vlan_run(True)
    py = _vlan_run(False)
    for name, row in nat["ports"].items():
        assert list(row) == list(py["ports"][name]), name
    assert nat["r1"] == py["r1"]
    assert nat["r3"] == py["r3"] == nat["frames"]  # the mirror saw the frames as received
    tagged = [f for f in nat["r1"] if f[12:16] == bytes([0x81, 0x00, 0x60, 101])]
    assert len(tagged) == len(nat["r1"]) - int(nat["ports"]["ring:1"][4])  # all but the runts (errors)
