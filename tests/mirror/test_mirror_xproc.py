"""A mirror registered in one process takes effect in a worker running in another."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.synchronize import Event

import numpy as np

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.mirror import MirrorAgent, MirrorSpec, add_mirror, list_mirrors, remove_mirror
from spp.mirror.registry import stats_table
from spp.ports.base import PortTable
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import M_ORIGPORT, Dataplane
from spp.runtime.stats import RX_PACKETS, TX_PACKETS, total_drops
from spp.testing import wait_for
from spp.testing.packets import numbered


def _secondary(prefix: str, ready: Event, stop: Event) -> None:
    """A stand-in for spp-vf: nullpmd:0 -> ring:1 -> nullpmd:2, with a mirror agent polling."""
    dp = Dataplane.attach(prefix)
    pt = PortTable(dp)
    src = pt.get("nullpmd:0", template=numbered(7, size=128))
    ring, out = pt.get("ring:1"), pt.get("nullpmd:2")
    agent = MirrorAgent(dp, pt, interval=0.001)
    agent.start()
    w = Worker(dp, 0, pin=False)
    w.start()
    w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f1", 0), (Attachment(src),), (Attachment(ring),)),
                          ComponentPlan(Forward(dp, "f2", 0), (Attachment(ring),), (Attachment(out),))), 1),
              timeout=120)
    ready.set()
    stop.wait(120)
    w.publish(WorkerPlan((), 2))
    w.stop()
    agent.close()
    pt.close_all()
    raise SystemExit(0 if w.error is None else 1)


def test_mirror_reaches_a_worker_in_another_process(dp: Dataplane) -> None:
    ctx = mp.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_secondary, args=(dp.prefix, ready, stop))
    child.start()
    pt = PortTable(dp)
    ring = pt.get("ring:3")
    got = 0
    bufs = np.zeros(64, np.int32)

    def drain() -> int:
        nonlocal got
        k = ring.rx_burst(bufs, 64)
        if k:
            assert dp.frame(int(bufs[0])) == numbered(7, size=128)[:96]
            assert dp.meta[bufs[0], M_ORIGPORT] == dp.port_slot("ring", 1)
            dp.free(bufs, k)
            got += k
        return got

    try:
        assert ready.wait(120)
        # both directions of ring:1: the child transmits on it (f1) and receives from it (f2)
        entry = add_mirror(dp, MirrorSpec.create(dp, "x", "ring:1", "ring:3", "both", snaplen=96))
        wait_for(lambda: drain() >= 5000, timeout=60, message="copies from the other process")
        [m] = list_mirrors(dp)
        assert m["name"] == "x" and m["stats"]["packets"] > 0
        remove_mirror(dp, "x")
        row = stats_table(dp)[entry.slot]
        wait_for(lambda: (drain(), int(row[0]))[1] == got and ring.count == 0, timeout=10,  # type: ignore[attr-defined]
                 message="the other process to detach the mirror")
    finally:
        stop.set()
        child.join(60)
    assert child.exitcode == 0
    drain()
    assert int(row[0]) + int(row[3]) + int(row[2]) > 0 and got == int(row[0])
    rx = int(dp.stats[dp.port_slot("nullpmd", 0), RX_PACKETS])
    mid = dp.stats[dp.port_slot("ring", 1)]
    out = dp.stats[dp.port_slot("nullpmd", 2)]
    assert rx == int(mid[TX_PACKETS]) + total_drops(mid)  # the original path lost nothing uncounted
    left = drain_ring(dp, 1)  # frames still in ring:1 when the child stopped
    assert int(mid[TX_PACKETS]) == int(mid[RX_PACKETS]) + left
    assert int(mid[RX_PACKETS]) == int(out[TX_PACKETS]) and total_drops(out) == 0
    # every frame that passed while the mirror was attached was copied twice (tx, then rx)
    assert int(row[0]) + int(row[3]) + int(row[2]) <= 2 * int(mid[TX_PACKETS])
    drain_ring(dp, 3)
