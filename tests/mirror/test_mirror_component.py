"""The ``mirror`` component: shallow and deep copies, and unequal tx acceptance."""

from __future__ import annotations

import time

import numpy as np
import pytest
from mirror_helpers import FlakySink

from spp.components.base import COMPONENT_TYPES, ComponentError
from spp.components.mirror import Mirror
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import PortId, PortTable
from spp.runtime.dataplane import M_ORIGLEN, M_ORIGPORT, M_PORT, Dataplane
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS, drop_field
from spp.testing import stack, wait_for
from spp.testing.memport import MemoryPort
from spp.testing.packets import frame_number, numbered


def _burst(dp: Dataplane, n: int, size: int = 64) -> np.ndarray:
    ids = np.zeros(n, np.int32)
    assert dp.alloc(ids) == n
    for i in range(n):
        dp.write_frame(int(ids[i]), numbered(i, size=size))
        dp.meta[ids[i], M_PORT] = 7
    return ids


def test_registered_and_port_limits(dp: Dataplane) -> None:
    m = COMPONENT_TYPES["mirror"](dp, "mr1", 2)
    assert isinstance(m, Mirror)
    assert m.copy_mode == "shallow"
    assert not m.ready(1, 1)
    assert m.ready(1, 2)
    m.check_ports(1, 2)
    with pytest.raises(ComponentError, match="at most 2 tx"):
        m.check_ports(1, 3)
    with pytest.raises(ComponentError, match="at most 1 rx"):
        m.check_ports(2, 2)
    with pytest.raises(ComponentError, match="'shallow' or 'deep'"):
        m.copy_mode = "clone"


def test_shallow_shares_the_buffer(dp: Dataplane) -> None:
    m = Mirror(dp, "mr", 0)
    ids = _burst(dp, 16)
    out, dst, k = m.process(ids, 16, 2)
    assert k == 32 and dst is not None
    assert (out[:16] == ids).all() and (out[16:32] == ids).all()
    assert (dst[:16] == 0).all() and (dst[16:32] == 1).all()
    assert (dp.refcnt[ids] == 2).all()
    assert dp.free_count == dp.n_bufs - 16  # no buffer taken
    dp.free(out[:32].copy())


def test_deep_copies_bytes_and_origin(dp: Dataplane) -> None:
    m = Mirror(dp, "mr", 0, copy_mode="deep")
    ids = _burst(dp, 16, size=300)
    out, dst, k = m.process(ids, 16, 2)
    assert k == 32 and dst is not None
    assert (out[:16] == ids).all()
    copies = out[16:32]
    assert not set(copies.tolist()) & set(ids.tolist())
    for a, b in zip(ids, copies, strict=True):
        assert dp.frame(int(a)) == dp.frame(int(b))
        assert dp.meta[b, M_ORIGLEN] == 300 and dp.meta[b, M_ORIGPORT] == 7
    assert (dp.refcnt[ids] == 1).all() and (dp.refcnt[copies] == 1).all()
    dp.free(out[:32].copy())


def test_deep_without_buffers_drops_the_copy_only() -> None:
    with stack(n_bufs=64) as dp:
        m = Mirror(dp, "mr", 0)
        m.copy_mode = "deep"
        ids = _burst(dp, 40)
        out, dst, k = m.process(ids, 40, 2)
        assert k == 64  # 40 originals + the 24 copies the pool could give
        assert dst is not None and (dst[:40] == 0).all() and (dst[40:64] == 1).all()
        assert m.stats_dict() == {"drops": {"mirror_nombuf": 16}}
        dp.free(out[:64].copy())


def test_worker_both_outputs_byte_exact(dp: Dataplane) -> None:
    src, orig, dup = MemoryPort(dp, 0), MemoryPort(dp, 1), MemoryPort(dp, 2)
    frames = [numbered(i, size=64 + i) for i in range(300)]
    src.inject(frames)
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        m = Mirror(dp, "mr", 0)
        w.publish(WorkerPlan((ComponentPlan(m, (Attachment(src),), (Attachment(orig), Attachment(dup))),), 1),
                  timeout=120)
        wait_for(lambda: len(orig.sent) == 300 and len(dup.sent) == 300, timeout=60)
        m.copy_mode = "deep"
        src.inject(frames)
        wait_for(lambda: len(orig.sent) == 600 and len(dup.sent) == 600, timeout=60)
    finally:
        w.stop()
    assert w.error is None
    assert orig.sent == frames + frames
    assert dup.sent == frames + frames
    assert [frame_number(f) for f in dup.sent[:3]] == [0, 1, 2]


def _total_drops(row: np.ndarray) -> int:
    return int(row[DROP_BASE:].sum())


# A million frames per mode: about a second each on the build machine.
FRAMES = 1_000_000


@pytest.mark.parametrize("mode", ["shallow", "deep"])
def test_unequal_acceptance_no_leak_no_double_free(mode: str) -> None:
    with stack(n_bufs=4096) as dp:
        pt = PortTable(dp)
        src = pt.get("nullpmd:0")
        tx0 = FlakySink(dp, PortId("nullpmd", 1))
        tx1 = FlakySink(dp, PortId("nullpmd", 2))
        tx1.calls = 1  # out of phase with tx0: the two ports refuse in different bursts
        m = Mirror(dp, "mr", 0, copy_mode=mode)
        w = Worker(dp, 0, pin=False)
        w.start()
        t0 = time.monotonic()
        try:
            w.publish(WorkerPlan((ComponentPlan(m, (Attachment(src),), (Attachment(tx0), Attachment(tx1))),), 1),
                      timeout=120)
            wait_for(lambda: src.stats[RX_PACKETS] >= FRAMES, timeout=120,
                     message=lambda: f"{int(src.stats[RX_PACKETS])} of {FRAMES} frames")
            w.publish(WorkerPlan((), 2))
        finally:
            w.stop()
        elapsed = time.monotonic() - t0
        assert w.error is None
        rx = int(src.stats[RX_PACKETS])
        s0, s1 = dp.stats[tx0.slot], dp.stats[tx1.slot]
        assert int(s0[drop_field("tx_full")]) > 0 and int(s1[drop_field("tx_full")]) > 0
        assert int(s0[TX_PACKETS]) != int(s1[TX_PACKETS])
        nombuf = int(m.drops[drop_field("mirror_nombuf")])
        assert rx == int(s0[TX_PACKETS]) + _total_drops(s0)
        assert rx == int(s1[TX_PACKETS]) + _total_drops(s1) + nombuf
        assert dp.double_frees == 0
        assert elapsed < 100, f"{rx} frames took {elapsed:.1f} s"


def test_compiled_mirror_component_both_modes(dp: Dataplane) -> None:
    """ring:0 → mirror → ring:1 (originals), ring:2 (duplicates) on the compiled loop; a copy-mode
    change applies at once; deep duplicates are private copies; a full duplicate ring is counted."""
    from spp.runtime import ringcore

    pt = PortTable(dp)
    src, orig, dup = pt.get("ring:0"), pt.get("ring:1"), pt.get("ring:2")
    frames = [numbered(i, size=64 + i) for i in range(100)]

    def load() -> None:
        ids = np.zeros(len(frames), np.int32)
        assert dp.alloc(ids) == len(frames)
        for b, f in zip(ids, frames, strict=True):
            dp.write_frame(int(b), f)
        assert src.tx_burst(ids, len(frames)) == len(frames)

    def drain(r: int) -> list[tuple[bytes, int]]:
        buf = np.zeros(4096, np.int32)
        k = int(ringcore.ring_dequeue(dp.ring_ctrl[r], dp.ring_slots[r], buf, 0, len(buf)))
        out = [(dp.frame(int(b)), int(b)) for b in buf[:k]]
        dp.free(buf, k)
        return out

    m = Mirror(dp, "mr", 0)
    w = Worker(dp, 0, pin=False)
    w.start()
    try:
        w.publish(WorkerPlan((ComponentPlan(m, (Attachment(src),), (Attachment(orig), Attachment(dup))),), 1),
                  timeout=300)
        assert w.path == ("native", None)
        load()
        wait_for(lambda: int(dup.stats[TX_PACKETS]) == 100, timeout=60)
        m.copy_mode = "deep"
        load()
        wait_for(lambda: int(dup.stats[TX_PACKETS]) == 200, timeout=60)
        w.publish(WorkerPlan((), 2))
    finally:
        w.stop()
    assert w.error is None
    o, d = drain(1), drain(2)
    assert [f for f, _ in o] == frames + frames and [f for f, _ in d] == frames + frames
    assert [b for _, b in d[:100]] == [b for _, b in o[:100]]  # shallow: the same buffers
    assert not {b for _, b in d[100:]} & {b for _, b in o[100:]}  # deep: private copies
    assert int(src.stats[RX_PACKETS]) == int(orig.stats[TX_PACKETS]) == 200
    pt.close_all()
