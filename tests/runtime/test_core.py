"""Pool, rings and the worker: the in-memory core."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from spp.components.forward import Forward, Merge
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import PortError, PortId, PortTable, open_port
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane, Layout
from spp.testing import stack, wait_for
from spp.testing.memport import MemoryPort
from spp.testing.packets import frame_number, numbered


def test_alloc_free_and_refcount(dp: Dataplane) -> None:
    ids = np.zeros(64, np.int32)
    assert dp.alloc(ids) == 64
    assert dp.free_count == dp.n_bufs - 64
    dp.ref(ids[:10].copy())
    dp.free(ids.copy())
    assert dp.free_count == dp.n_bufs - 10
    dp.free(ids[:10].copy())
    assert dp.free_count == dp.n_bufs
    dp.free(ids[:1].copy())  # one too many: counted, list unharmed
    assert dp.double_frees == 1
    dp.header[13] = 0  # reset so the fixture's leak check passes


def test_pool_exhaustion_is_partial() -> None:
    with stack(n_bufs=64) as dp:
        ids = np.zeros(100, np.int32)
        assert dp.alloc(ids) == 64
        assert dp.alloc(np.zeros(1, np.int32)) == 0
        dp.free(ids, 64)


def test_ring_fifo_and_full(dp: Dataplane) -> None:
    ids = np.arange(600, dtype=np.int32)
    ctrl, slots = dp.ring_ctrl[0], dp.ring_slots[0]
    assert ringcore.ring_enqueue(ctrl, slots, ids, 0, 600) == 512  # ring_size 512: takes what fits
    out = np.zeros(600, np.int32)
    assert ringcore.ring_dequeue(ctrl, slots, out, 0, 600) == 512
    assert (out[:512] == ids[:512]).all()


def _drop_refs(prefix: str, ids: np.ndarray, rounds: int) -> None:
    dp = Dataplane.attach(prefix)
    for _ in range(rounds):
        dp.free(ids.copy())
    dp.close()


def test_refcount_atomic_across_processes(dp: Dataplane) -> None:
    ids = np.zeros(256, np.int32)
    assert dp.alloc(ids) == 256
    rounds = 2000
    for _ in range(2 * rounds - 1):
        dp.ref(ids.copy())  # 2*rounds references each
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_drop_refs, args=(dp.prefix, ids, rounds)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert dp.free_count == dp.n_bufs
    assert dp.double_frees == 0


def test_port_ids() -> None:
    assert str(PortId.parse("phy:0nq1")) == "phy:0nq1"
    assert PortId.parse("ring:3") == PortId("ring", 3)
    with pytest.raises(PortError, match="unknown type"):
        PortId.parse("foo:1")
    with pytest.raises(PortError, match="expected TYPE:N"):
        PortId.parse("ring0")


def test_refused_and_out_of_range(dp: Dataplane) -> None:
    with pytest.raises(PortError, match="memif"):
        open_port(dp, "memif:0")
    with pytest.raises(ValueError, match=r"index must be 0\.\.15"):
        open_port(dp, "ring:99")


@pytest.mark.parametrize("python_callback", [False, True])
def test_forward_chain_counts_add_up(dp: Dataplane, python_callback: bool) -> None:
    pt = PortTable(dp)
    src, r, dst = pt.get("nullpmd:0"), pt.get("ring:0"), pt.get("nullpmd:1")
    if python_callback:  # called from the compiled loop once per burst
        src.add_rx_callback(lambda port, bufs, n: n)
    w = Worker(dp, 0, pin=False)
    w.start()
    f1, f2 = Forward(dp, "f1", 0), Forward(dp, "f2", 0)
    plan = WorkerPlan((ComponentPlan(f1, (Attachment(src),), (Attachment(r),)),
                       ComponentPlan(f2, (Attachment(r),), (Attachment(dst),))), 1)
    w.publish(plan, timeout=120)
    assert w.path == ("native", None)
    wait_for(lambda: dst.stats[2] > 10000, timeout=60)
    w.publish(WorkerPlan((), 2))
    w.stop()
    assert w.error is None
    rx = int(src.stats[0])
    assert rx == int(r.stats[2]) + int(r.stats[5:].sum())
    assert int(r.stats[0]) == int(dst.stats[2])
    assert int(r.stats[2]) == int(r.stats[0]) + ringcore.ring_count(r.ctrl)  # type: ignore[attr-defined]
    from spp.ports.ring import drain_ring
    drain_ring(dp, 0)


def test_merge_memory_ports_byte_exact(dp: Dataplane) -> None:
    a, b, out = MemoryPort(dp, 0), MemoryPort(dp, 1), MemoryPort(dp, 2)
    frames_a = [numbered(i) for i in range(100)]
    frames_b = [numbered(1000 + i, size=1500) for i in range(100)]
    a.inject(frames_a)
    b.inject([*frames_b, b"\x00" * 10, b"\x00" * 5000])  # a runt and a giant
    w = Worker(dp, 0, pin=False)
    w.start()
    m = Merge(dp, "m", 0)
    w.publish(WorkerPlan((ComponentPlan(m, (Attachment(a), Attachment(b)), (Attachment(out),)),), 1))
    wait_for(lambda: len(out.sent) == 200)
    w.stop()
    assert sorted(frame_number(f) for f in out.sent) == sorted(list(range(100)) + list(range(1000, 1100)))
    assert set(out.sent) == set(frames_a + frames_b)
    assert b.stats_dict()["drops"] == {"runt": 1, "too_long": 1}


def test_full_tx_counts_and_frees(dp: Dataplane) -> None:
    a, out = MemoryPort(dp, 0), MemoryPort(dp, 1, tx_room=0)
    a.inject([numbered(i) for i in range(50)])
    w = Worker(dp, 0, pin=False)
    w.start()
    w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(a),), (Attachment(out),)),), 1))
    wait_for(lambda: out.stats_dict()["drops"].get("tx_full") == 50)  # type: ignore[union-attr]
    w.stop()


def test_two_stacks_side_by_side() -> None:
    with stack() as a, stack() as b:
        ids = np.zeros(8, np.int32)
        a.alloc(ids)
        assert b.free_count == b.n_bufs
        a.free(ids)


def test_attach_missing_prefix_is_clear() -> None:
    with pytest.raises(FileNotFoundError, match="start spp-primary"):
        Dataplane.attach("nosuchprefix-xyz")
    with pytest.raises(ValueError, match="ring size"):
        Dataplane.create("bad", Layout(ring_size=1000))


def test_python_callbacks_get_hooks_that_a_new_plan_releases(dp: Dataplane) -> None:
    """A mirror with a Python filter runs through a hook of the plan; replacing the plan releases it."""
    from spp.graph import pyhook
    from spp.graph.native_plan import NativePlan
    from spp.mirror.engine import PortMirror

    pt = PortTable(dp)
    src, dst, mon = pt.get("nullpmd:0"), pt.get("nullpmd:1"), pt.get("nullpmd:2")
    plan = WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(dst),)),), 1)
    pm = PortMirror(dp, "py", src, mon, "rx", filter=lambda *args: None)  # a Python filter
    pm.attach()
    try:
        npn = NativePlan(plan)
        assert npn.rx_cbh[0, 0] == 1 and npn.rx_mn[0, 0] == 0  # the rx callbacks run in Python, in order
        h = int(npn.pyh[0])
        assert pyhook._hooks[h] is not None
        npn.close()
        assert pyhook._hooks[h] is None
    finally:
        pm.detach()
    assert NativePlan(plan).rx_cbh[0, 0] == 0
    pt.close_all()
