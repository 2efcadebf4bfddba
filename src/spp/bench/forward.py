"""``forward``: nullpmd → forward → nullpmd on one core, beside testpmd's io forwarding.

spp runs a :class:`~spp.graph.worker.Worker` pinned to ``--core`` with one
``Forward`` component (it takes the compiled fast path).  The peer is
``dpdk-testpmd --forward-mode=io`` over two ``net_null`` vdevs with its one
forwarding lcore on the same core.  The two take turns (``--rounds`` windows each,
``--seconds`` in total per side) so both see the same machine; each side's figure
is its best window (noise on a shared host only ever slows a window down), the
median is reported too.  Both are frames forwarded per second by one core (testpmd
forwards both directions on its core; spp one direction: per-core rates compare).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from spp.bench.common import (
    BenchError,
    Cleanup,
    Options,
    Result,
    Testpmd,
    eal_args,
    median,
    runs_native,
    thread_cpu_seconds,
)
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS
from spp.testing import unique_prefix, wait_for

PEER = "dpdk-testpmd io (net_null x2)"


@contextmanager
def worker_burst(burst: int) -> Iterator[None]:
    """Run workers created inside with a transmit burst of ``burst`` frames.

    ``spp.graph.worker.BURST`` is a module constant; the bench process runs no other
    worker, so it is set for the duration and restored.
    """
    import spp.graph.worker as worker_mod

    old = worker_mod.BURST
    worker_mod.BURST = burst
    try:
        yield
    finally:
        worker_mod.BURST = old


class SppForward:
    """A forward nullpmd:0 → nullpmd:1 in this process; ``measure`` runs one window."""

    def __init__(self, cleanup: Cleanup, core: int, size: int) -> None:
        import spp.graph.worker as wm
        from spp.components.forward import Forward
        from spp.ports.base import PortTable

        self.dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
        cleanup.push("data plane " + self.dp.prefix, self.dp.close)
        self.ports = PortTable(self.dp)
        cleanup.push("ports", self.ports.close_all)
        self.src = self.ports.get("nullpmd:0", size=size)
        self.dst = self.ports.get("nullpmd:1")
        self.worker = wm.Worker(self.dp, core)
        self.worker.start()
        cleanup.push("worker", self.worker.stop)
        comp = Forward(self.dp, "fwd", core)
        self.plan = wm.WorkerPlan((wm.ComponentPlan(comp, (wm.Attachment(self.src),),
                                                    (wm.Attachment(self.dst),)),), 1)
        self.generation = 1
        self.native = False

    def _publish(self, running: bool) -> None:
        import spp.graph.worker as wm

        self.generation += 1
        plan = wm.WorkerPlan(self.plan.components if running else (), self.generation)
        self.worker.publish(plan, timeout=300)

    def measure(self, seconds: float) -> tuple[float, float]:
        """Forward for ``seconds``; return Mpps delivered to nullpmd:1 per wall-clock and per CPU second."""
        tx = self.dst.stats
        self._publish(True)
        self.native = runs_native(self.worker)
        start = int(tx[TX_PACKETS])
        wait_for(lambda: int(tx[TX_PACKETS]) > start, timeout=300, message="first forwarded frame")
        tid = self.worker._thread.native_id
        assert tid is not None
        c0, t0, u0 = int(tx[TX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
        time.sleep(seconds)  # the measurement window, not a wait for a result
        c1, t1, u1 = int(tx[TX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
        self._publish(False)
        if self.worker.error is not None:
            raise BenchError(f"spp worker failed: {self.worker.error!r}")
        return (c1 - c0) / (t1 - t0) / 1e6, (c1 - c0) / max(u1 - u0, 0.01) / 1e6

    def finish(self) -> dict[str, object]:
        """Stop the worker and check the books: every frame received is sent or counted."""
        self.worker.stop()
        rx = int(self.src.stats[RX_PACKETS])
        tx = int(self.dst.stats[TX_PACKETS])
        drops = int(self.src.stats[DROP_BASE:].sum() + self.dst.stats[DROP_BASE:].sum())
        wait_for(lambda: self.dp.free_count == self.dp.n_bufs, timeout=5, message="pool whole")
        return {"frames": tx, "exact": rx == tx + drops and self.dp.double_frees == 0,
                "native": self.native}


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    results: list[Result] = []
    window = opts.seconds / max(opts.rounds, 1)
    for burst in opts.bursts:
        inner = Cleanup()
        try:
            with worker_burst(burst):
                fw = SppForward(inner, opts.core, opts.size)
                tp: Testpmd | None = None
                peer_error = None
                if opts.peer:
                    vdevs = ["--vdev", f"net_null0,size={opts.size}", "--vdev", f"net_null1,size={opts.size}"]
                    try:
                        tp = Testpmd([*eal_args(unique_prefix("tpmd"), opts.core), *vdevs],
                                     ["--forward-mode=io", "--nb-cores=1", f"--burst={burst}"], inner)
                        inner.push("testpmd quit", tp.quit)
                    except BenchError as e:  # spp's figures still count; say why there is no peer
                        peer_error = str(e)
                fw.measure(min(window, 0.5))  # warm-up: compile, caches
                ours: list[float] = []
                theirs: list[float] = []
                ours_cpu: list[float] = []
                theirs_cpu: list[float] = []
                for _ in range(max(opts.rounds, 1)):
                    wall, cpu = fw.measure(window)
                    ours.append(wall)
                    ours_cpu.append(cpu)
                    if tp is not None:
                        _, tx, elapsed = tp.forward_for(window)
                        theirs.append(tx / elapsed / 1e6)
                        theirs_cpu.append(tx / max(tp.cpu, 0.01) / 1e6)
                books = fw.finish()
        finally:
            inner.run()
        extra: dict[str, object] = {"burst": burst, "size": opts.size, "rounds": len(ours),
                                    "mpps_median": round(median(ours), 3), "spp_windows": [round(x, 2) for x in ours]}
        extra["mpps_per_cpu"] = round(max(ours_cpu), 3)
        if peer_error:
            extra["peer_error"] = peer_error
        if theirs:
            extra["peer_mpps_per_cpu"] = round(max(theirs_cpu), 3)
            extra["ratio_per_cpu"] = round(max(ours_cpu) / max(theirs_cpu), 3)
            extra["peer_mpps_median"] = round(median(theirs), 3)
            extra["peer_windows"] = [round(x, 2) for x in theirs]
            extra["peer_command"] = tp.command if tp else None
        extra.update(books)
        results.append(Result("forward", max(ours), PEER if theirs else None, max(theirs) if theirs else None,
                              extra=extra))
    return results
