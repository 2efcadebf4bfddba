"""What a dead process held goes back to the pool; what live ones hold never does."""

from __future__ import annotations

import multiprocessing as mp
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import PortTable
from spp.ports.ring import drain_ring
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.reclaim import reclaim_dead
from spp.testing import stack, wait_for

# Dies holding: 10 buffers of its own, 3 of them also queued in ring:0 (two with a second
# reference it kept), and an open producer claim of 2 entries on ring:1.
HOLDER = """
import sys, time
import numpy as np
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
dp = Dataplane.attach(sys.argv[1])
ids = np.zeros(10, np.int32)
assert dp.alloc(ids) == 10
dp.ref(ids[:2].copy())
assert ringcore.ring_enqueue(dp.ring_ctrl[0], dp.ring_slots[0], ids, 0, 3) == 3
dp.ring_ctrl[1][ringcore.P_HEAD] += 2
print("up", flush=True)
time.sleep(600)
"""

# A live worker forwarding nullpmd:5 -> nullpmd:6, then stopped (SIGSTOP) by the test.
LIVE = """
import sys, time
from spp.components.forward import Forward
from spp.ports.base import PortTable
from spp.runtime.dataplane import Dataplane
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
dp = Dataplane.attach(sys.argv[1])
pt = PortTable(dp)
w = Worker(dp, 0, pin=False)
w.start()
dst = pt.get("nullpmd:6")
w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(pt.get("nullpmd:5")),), (Attachment(dst),)),),
                     1), timeout=300)
while dst.stats[2] == 0:  # forwarding (a cold first call compiles, and cannot pause meanwhile)
    time.sleep(0.01)
print("up", flush=True)
time.sleep(600)
"""


def child(code: str, dp: Dataplane) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, dp.prefix], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "up"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGSTOP ``proc`` and wait until it is stopped (delivery is asynchronous: a worker may pause meanwhile)."""
    proc.send_signal(signal.SIGSTOP)

    def stopped() -> bool:  # every thread, not only the main one
        tasks = Path(f"/proc/{proc.pid}/task")
        return all((t / "stat").read_text().rsplit(")", 1)[1].split()[0] == "T" for t in tasks.iterdir())

    wait_for(stopped, timeout=10, message="the process to stop")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.stdout:
        proc.stdout.close()


def test_reclaim_what_the_dead_held_while_a_live_worker_forwards() -> None:
    with stack(n_bufs=512, n_rings=4, ring_size=64) as dp:
        pt = PortTable(dp)
        src, dst = pt.get("nullpmd:0"), pt.get("nullpmd:1")
        w = Worker(dp, 0, pin=False)
        w.start()
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(dst),)),), 1),
                  timeout=300)
        wait_for(lambda: int(dst.stats[2]) > 0, timeout=600)  # a cold first call compiles (and cannot pause)
        holder = child(HOLDER, dp)
        kill(holder)
        result = reclaim_dead(dp, timeout=10)
        assert result is not None and result.done, result
        # 7 buffers only it held; 2 extra references on queued ones; its 2-entry claim on ring:1
        assert (result.buffers, result.references, result.ring_entries) == (7, 9, 2)
        assert result.dead == [holder.pid]
        # the live worker kept forwarding through the pause, and counts add up
        before = int(dst.stats[2])
        wait_for(lambda: int(dst.stats[2]) > before + 1000, timeout=30)
        w.publish(WorkerPlan((), 2))
        w.stop()
        assert w.error is None
        # ring:0 still holds its 3 entries, each now with exactly one reference; ring:1 works again
        assert ringcore.ring_count(dp.ring_ctrl[0]) == 3
        ids = dp.ring_slots[0][:3]
        assert [int(dp.refcnt[b]) for b in ids] == [1, 1, 1]
        one = np.zeros(1, np.int32)
        assert dp.alloc(one) == 1
        assert ringcore.ring_enqueue(dp.ring_ctrl[1], dp.ring_slots[1], one, 0, 1) == 1
        drain_ring(dp, 1)
        drain_ring(dp, 0)
        assert dp.double_frees == 0
        assert reclaim_dead(dp) is None  # the dead member was handled once, and only once


def test_a_stopped_process_blocks_reclaiming_not_traffic() -> None:
    with stack(n_bufs=512, n_rings=4, ring_size=64) as dp:
        live = child(LIVE, dp)
        try:
            holder = child(HOLDER, dp)
            kill(holder)
            stop(live)
            in_use = dp.in_use
            result = reclaim_dead(dp, timeout=0.3)
            assert result is not None and not result.done, result  # the stopped worker never paused
            assert "did not pause" in str(result)
            assert dp.in_use == in_use  # nothing was touched
            live.send_signal(signal.SIGCONT)
            result = reclaim_dead(dp, timeout=10)
            assert result is not None and result.done, result
            assert (result.buffers, result.ring_entries) == (7, 2), result
            assert dp.header[17] == 7
        finally:
            kill(live)
        assert reclaim_dead(dp) is not None  # now the killed forwarder: it held nothing between calls
        drain_ring(dp, 0)


def test_primary_backs_off_while_reclaiming_is_blocked() -> None:
    from spp.control.primary import RECLAIM_BACKOFF_MIN, Primary

    with stack(n_bufs=512, n_rings=4, ring_size=64) as dp:
        live = child(LIVE, dp)
        primary = Primary(dp)
        try:
            kill(child(HOLDER, dp))
            stop(live)
            t = 1000.0
            blocked = primary.reclaim(now=t)
            assert blocked is not None and not blocked.done
            assert primary.reclaim(now=t + RECLAIM_BACKOFF_MIN) is None  # too soon: not even tried
            live.send_signal(signal.SIGCONT)
            done = primary.reclaim(now=t + 10)
            assert done is not None and done.done and done.buffers == 7, done
        finally:
            kill(live)
        assert primary.reclaim(now=2000.0) is not None
        drain_ring(dp, 0)


def test_ring_a_dead_producer_or_consumer_never_stalls_the_others(dp: Dataplane) -> None:
    ctrl, slots = dp.ring_ctrl[0], dp.ring_slots[0]
    size = slots.shape[0]
    # a producer reserves 3 slots, writes the second one and dies
    ctrl[ringcore.P_HEAD] += 3
    slots[1] = 100
    assert ringcore.ring_enqueue(ctrl, slots, np.array([1, 2, 3], np.int32), 0, 3) == 3  # returns at once
    out = np.zeros(size, np.int32)
    assert ringcore.ring_dequeue(ctrl, slots, out, 0, size) == 0  # held back behind the dead claim
    assert ringcore.recover(ctrl, slots) == (2, 0)  # its 2 unwritten slots dropped, its written id kept
    assert ringcore.ring_dequeue(ctrl, slots, out, 0, size) == 4
    assert list(out[:4]) == [100, 1, 2, 3]
    # a consumer reserves 2 entries and dies before taking them; the others go on
    assert ringcore.ring_enqueue(ctrl, slots, np.arange(10, 16, dtype=np.int32), 0, 6) == 6
    ctrl[ringcore.C_HEAD] += 2
    assert ringcore.ring_dequeue(ctrl, slots, out, 0, 3) == 3
    assert list(out[:3]) == [12, 13, 14]
    room = size - 6  # the dead claim and the 3 taken keep their room until recovered
    assert ringcore.ring_enqueue(ctrl, slots, np.zeros(size, np.int32), 0, size) == room
    assert ringcore.recover(ctrl, slots) == (0, 2)  # its 2 entries go back, in their place
    assert ringcore.ring_count(ctrl) == 2 + 1 + room
    assert ringcore.ring_dequeue(ctrl, slots, out, 0, size) == 3 + room
    assert list(out[:3]) == [10, 11, 15]
    assert (slots == ringcore.EMPTY).all()
    assert ringcore.recover(ctrl, slots) == (0, 0)


def _ring_traffic(prefix: str, role: str, base: int, count: int, result: Any, taken: Any) -> None:
    dp = Dataplane.attach(prefix)
    ctrl, slots = dp.ring_ctrl[0], dp.ring_slots[0]
    rng = np.random.default_rng(base)
    buf = np.zeros(64, np.int32)
    if role == "producer":
        ids = np.arange(base, base + count, dtype=np.int32)
        i = 0
        while i < count:
            i += int(ringcore.ring_enqueue(ctrl, slots, ids, i, min(int(rng.integers(1, 40)), count - i)))
    else:
        got = []
        while taken.value < count:  # all consumers together
            k = int(ringcore.ring_dequeue(ctrl, slots, buf, 0, int(rng.integers(1, 64))))
            if k:
                got.extend(buf[:k].tolist())
                with taken.get_lock():
                    taken.value += k
        result.put(got)
    dp.close()


def test_ring_many_producers_and_consumers_lose_and_repeat_nothing(dp: Dataplane) -> None:
    ctx = mp.get_context("fork")
    per = 100_000
    results = ctx.Queue()
    taken = ctx.Value("q", 0)
    procs = [ctx.Process(target=_ring_traffic, args=(dp.prefix, "producer", b * per, per, None, None))
             for b in range(3)]
    procs += [ctx.Process(target=_ring_traffic, args=(dp.prefix, "consumer", 7 + c, 3 * per, results, taken))
              for c in range(3)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in range(3)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    everything = sorted(x for g in got for x in g)
    assert everything == list(range(3 * per))
    for g in got:  # each consumer sees each producer's ids in order
        for b in range(3):
            mine = [x for x in g if b * per <= x < (b + 1) * per]
            assert mine == sorted(mine)
    assert (dp.ring_slots[0] == ringcore.EMPTY).all()


# Dies between reserving 2 slots of ring:2 and writing them (a kill in the middle of an enqueue).
CLAIMER = """
import sys, time
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
dp = Dataplane.attach(sys.argv[1])
dp.ring_ctrl[2][ringcore.P_HEAD] += 2
print("up", flush=True)
time.sleep(600)
"""


def test_a_ring_with_a_dead_claim_keeps_the_world_stoppable() -> None:
    """A live worker producing into a ring behind a dead claim neither hangs nor blocks the reclaim."""
    with stack(n_bufs=512, n_rings=4, ring_size=64) as dp:
        pt = PortTable(dp)
        src, ring, dst = pt.get("nullpmd:0"), pt.get("ring:2"), pt.get("nullpmd:1")
        holder = child(CLAIMER, dp)
        w = Worker(dp, 0, pin=False)
        w.start()
        w.publish(WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(ring),)),
                              ComponentPlan(Forward(dp, "g", 1), (Attachment(ring),), (Attachment(dst),))), 1),
                  timeout=300)
        wait_for(lambda: int(src.stats[0]) > 1000, timeout=600)  # a cold first call compiles
        assert int(dst.stats[2]) == 0  # nothing passes the dead claim yet (the ring fills, counted full)
        kill(holder)
        result = reclaim_dead(dp, timeout=10)
        assert result is not None and result.done, result
        assert result.ring_entries == 2
        wait_for(lambda: int(dst.stats[2]) > 1000, timeout=30, message="traffic through the recovered ring")
        w.publish(WorkerPlan((), 2))
        w.stop()
        assert w.error is None
        drain_ring(dp, 2)
        assert dp.double_frees == 0


def test_frees_always_fit_the_pool_behind_a_stuck_consumer(dp: Dataplane) -> None:
    """A consumer stopped mid-alloc holds the pool's consumer tail; others take at most CLAIM_WINDOW
    past it, and the pool ring has that much room more than buffers: no free is ever refused."""
    dp.pool_ctrl[ringcore.C_HEAD] += 2  # reserved 2 free buffers, then stopped (or died)
    ids = np.zeros(64, np.int32)
    taken = 0
    for _ in range(8 * dp.n_bufs // 64):
        k = dp.alloc(ids)
        taken += k
        dp.free(ids[:k].copy(), k)
    assert ringcore.CLAIM_WINDOW - 64 <= taken <= ringcore.CLAIM_WINDOW  # then the pool looked empty
    assert ringcore.recover(dp.pool_ctrl, dp.pool_slots) == (0, 2)
    assert dp.free_count == dp.n_bufs  # every free went back
    assert dp.double_frees == 0
