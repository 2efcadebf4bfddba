"""What a dead process held goes back to the pool; what live ones hold never does."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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
