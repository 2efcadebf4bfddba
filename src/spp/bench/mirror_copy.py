"""``mirror-copy``: the ``mirror`` component, shallow ÷ deep copies, at 64 and 1500 bytes.

One :class:`~spp.graph.worker.Worker` pinned to ``--core`` runs a ``Mirror``
component ``nullpmd:0`` (frames of the size being measured) → ``nullpmd:1``
(originals) + ``nullpmd:2`` (duplicates).  For each size the two copy modes take
turns (``--rounds`` windows each, ``--seconds`` in total per mode) on the same
worker and data plane; each mode's figure is its best window (Mpps of frames taken
from the source; every one of them leaves twice).  One result per size: ``mpps`` is
shallow, ``peer_mpps`` deep, so ``ratio`` is shallow ÷ deep.  There is no external
reference: the comparison is spp against itself.

Each row says whether the worker ran the compiled loop (``native``); the books are
checked at the end: received × 2 = transmitted + counted drops, pool
whole.
"""

from __future__ import annotations

import os
import time

from spp.bench.common import BenchError, Cleanup, Options, Result, median, runs_native, thread_cpu_seconds
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS
from spp.testing import unique_prefix, wait_for

SIZES = (64, 1500)
PEER = "spp mirror deep copy"


class _MirrorRig:
    """nullpmd:0 → mirror → nullpmd:1 / nullpmd:2 in this process, one copy mode at a time."""

    def __init__(self, cleanup: Cleanup, core: int, size: int) -> None:
        import spp.graph.worker as wm
        from spp.components.mirror import Mirror
        from spp.ports.base import PortTable

        self.dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
        cleanup.push("data plane " + self.dp.prefix, self.dp.close)
        self.ports = PortTable(self.dp)
        cleanup.push("ports", self.ports.close_all)
        self.src = self.ports.get("nullpmd:0", size=size)
        self.orig = self.ports.get("nullpmd:1")
        self.dup = self.ports.get("nullpmd:2")
        self.worker = wm.Worker(self.dp, core)
        self.worker.start()
        cleanup.push("worker", self.worker.stop)
        self.mirror = Mirror(self.dp, "mir", core)
        self.components = (wm.ComponentPlan(self.mirror, (wm.Attachment(self.src),),
                                            (wm.Attachment(self.orig), wm.Attachment(self.dup))),)
        self.generation = 1
        self.native = True

    def _publish(self, running: bool) -> None:
        import spp.graph.worker as wm

        self.generation += 1
        self.worker.publish(wm.WorkerPlan(self.components if running else (), self.generation), timeout=300)

    def measure(self, mode: str, seconds: float) -> tuple[float, float]:
        """Mirror in ``mode`` for ``seconds``; return Mpps taken from the source per wall-clock and CPU second."""
        self.mirror.copy_mode = mode
        rx = self.src.stats
        self._publish(True)
        start = int(self.dup.stats[TX_PACKETS])
        wait_for(lambda: int(self.dup.stats[TX_PACKETS]) > start, timeout=300, message="first mirrored frame")
        self.native = self.native and runs_native(self.worker)
        tid = self.worker._thread.native_id
        assert tid is not None
        c0, t0, u0 = int(rx[RX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
        time.sleep(seconds)  # the measurement window, not a wait for a result
        c1, t1, u1 = int(rx[RX_PACKETS]), time.perf_counter(), thread_cpu_seconds(os.getpid(), tid)
        self._publish(False)
        if self.worker.error is not None:
            raise BenchError(f"spp worker failed: {self.worker.error!r}")
        return (c1 - c0) / (t1 - t0) / 1e6, (c1 - c0) / max(u1 - u0, 0.01) / 1e6

    def finish(self) -> dict[str, object]:
        """Stop the worker; check received × 2 = transmitted + drops and that the pool is whole."""
        self.worker.stop()
        rx = int(self.src.stats[RX_PACKETS])
        tx = int(self.orig.stats[TX_PACKETS]) + int(self.dup.stats[TX_PACKETS])
        drops = sum(int(p.stats[DROP_BASE:].sum()) for p in (self.src, self.orig, self.dup))
        drops += int(self.mirror.drops[DROP_BASE:].sum())  # mirror_nombuf: deep copies the pool could not give
        wait_for(lambda: self.dp.free_count == self.dp.n_bufs, timeout=5, message="pool whole")
        return {"frames_in": rx, "exact": 2 * rx == tx + drops and self.dp.double_frees == 0, "native": self.native}


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    results: list[Result] = []
    rounds = max(opts.rounds, 1)
    window = opts.seconds / rounds
    for size in SIZES:
        inner = Cleanup()
        try:
            rig = _MirrorRig(inner, opts.core, size)
            for mode in ("shallow", "deep"):
                rig.measure(mode, min(window, 0.5))  # warm-up: compile, caches
            figures: dict[str, list[float]] = {"shallow": [], "deep": []}
            cpu: dict[str, list[float]] = {"shallow": [], "deep": []}
            for _ in range(rounds):  # alternate modes so both see the same machine
                for mode in ("shallow", "deep"):
                    wall, per_cpu = rig.measure(mode, window)
                    figures[mode].append(wall)
                    cpu[mode].append(per_cpu)
            books = rig.finish()
        finally:
            inner.run()
            cleanup.errors.extend(inner.errors)
        sh, dp_ = figures["shallow"], figures["deep"]
        extra: dict[str, object] = {
            "size": size, "rounds": rounds, "shallow_mpps_median": round(median(sh), 3),
            "deep_mpps_median": round(median(dp_), 3), "mpps_per_cpu": round(max(cpu["shallow"]), 3),
            "peer_mpps_per_cpu": round(max(cpu["deep"]), 3),
            "ratio_per_cpu": round(max(cpu["shallow"]) / max(*cpu["deep"], 1e-9), 3),
            "spp_windows": [round(x, 3) for x in sh], "peer_windows": [round(x, 3) for x in dp_],
        }
        extra.update(books)
        results.append(Result("mirror-copy", max(sh), PEER, max(dp_), extra=extra))
    return results
