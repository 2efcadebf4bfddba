"""``classifier``: nullpmd → classifier (256 MACs) → 4 × nullpmd on one core, beside testpmd io forwarding.

The source cycles through 256 template frames with distinct destination MACs; the
classifier's table maps MAC ``i`` to sink ``i % 4``.  The worker takes the compiled
loop.  The peer is the ``forward`` scenario's (``dpdk-testpmd --forward-mode=io``
over two ``net_null`` vdevs on the same core); both sides take turns.

:class:`Chain` (a set of workers running one plan each, measured by the frames its
sinks transmit) is shared by the ``vf-chain``, ``reconfig`` and ``mirror-overhead``
scenarios.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

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
from spp.graph.worker import ComponentPlan, Worker, WorkerPlan
from spp.ports.base import Port, PortTable
from spp.runtime.dataplane import Dataplane, Layout
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS
from spp.testing import unique_prefix, wait_for
from spp.testing.packets import numbered

PEER = "dpdk-testpmd io (net_null x2)"
N_MACS = 256
N_SINKS = 4


def mac_of(i: int) -> str:
    """The destination MAC of template ``i``."""
    return f"52:54:00:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"


def mac_int(i: int) -> int:
    return int(mac_of(i).replace(":", ""), 16)


class Chain:
    """Workers (one per core) in this process on a private data plane; ``measure`` runs a window.

    ``build(ports)`` returns ``{core: components}``; the frames the sink ports transmit
    are the figure; every port's counters are checked at :meth:`finish`.
    """

    def __init__(self, cleanup: Cleanup, cores: Sequence[int],
                 build: Callable[[PortTable], dict[int, tuple[ComponentPlan, ...]]], sinks: Sequence[str],
                 n_bufs: int = 16384) -> None:
        self.dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=n_bufs, n_rings=8, ring_size=1024))
        cleanup.push("data plane " + self.dp.prefix, self.dp.close)
        self.ports = PortTable(self.dp)
        cleanup.push("ports", self.ports.close_all)
        self.plans = build(self.ports)
        self.sinks = [self.ports.get(s) for s in sinks]
        self.workers = {c: Worker(self.dp, c) for c in cores}
        for w in self.workers.values():
            w.start()
            cleanup.push("worker", w.stop)
        self.generation = 1
        self.native = False

    def publish(self, running: bool) -> None:
        self.generation += 1
        for core, w in self.workers.items():
            w.publish(WorkerPlan(self.plans.get(core, ()) if running else (), self.generation), timeout=300)

    def delivered(self) -> int:
        return sum(int(p.stats[TX_PACKETS]) for p in self.sinks)

    def cpu(self) -> float:
        total = 0.0
        for w in self.workers.values():
            tid = w._thread.native_id
            assert tid is not None
            total += thread_cpu_seconds(os.getpid(), tid)
        return total

    def measure(self, seconds: float, during: Callable[[], None] | None = None) -> tuple[float, float]:
        """Run for ``seconds`` (calling ``during`` meanwhile, if given); Mpps per wall-clock and per CPU second."""
        self.publish(True)
        self.native = all(runs_native(w) for w in self.workers.values())
        start = self.delivered()
        wait_for(lambda: self.delivered() > start, timeout=300, message="first forwarded frame")
        c0, t0, u0 = self.delivered(), time.perf_counter(), self.cpu()
        if during is None:
            time.sleep(seconds)  # the measurement window, not a wait for a result
        else:
            during()
        c1, t1, u1 = self.delivered(), time.perf_counter(), self.cpu()
        self.publish(False)
        for w in self.workers.values():
            if w.error is not None:
                raise BenchError(f"spp worker failed: {w.error!r}")
        return (c1 - c0) / (t1 - t0) / 1e6, (c1 - c0) / max(u1 - u0, 0.01) / 1e6

    def books(self, components: Sequence[Any] = ()) -> dict[str, object]:
        """Stop the workers and check: frames received = frames sent + counted drops (+ frames left in rings)."""
        from spp.ports.ring import RingPort, drain_ring

        for w in self.workers.values():
            w.stop()
        ports: list[Port] = self.ports.all()
        rx = sum(int(p.stats[RX_PACKETS]) for p in ports if p.ptype == "nullpmd")
        sent = self.delivered()
        drops = sum(int(p.stats[DROP_BASE:].sum()) for p in ports) + sum(int(c.drops.sum()) for c in components)
        left = sum(drain_ring(self.dp, p.id.index) for p in ports if isinstance(p, RingPort))
        wait_for(lambda: self.dp.free_count == self.dp.n_bufs, timeout=5, message="pool whole")
        return {"frames": sent, "drops": drops, "left_in_rings": left, "native": self.native,
                "exact": rx == sent + drops + left and self.dp.double_frees == 0}


def peer(opts: Options, burst: int, cleanup: Cleanup) -> tuple[Testpmd | None, str | None]:
    """The ``forward`` scenario's testpmd (io over two net_null on ``opts.core``), or why there is none."""
    if not opts.peer:
        return None, None
    vdevs = ["--vdev", f"net_null0,size={opts.size}", "--vdev", f"net_null1,size={opts.size}"]
    try:
        tp = Testpmd([*eal_args(unique_prefix("tpmd"), opts.core), *vdevs],
                     ["--forward-mode=io", "--nb-cores=1", f"--burst={burst}"], cleanup)
        cleanup.push("testpmd quit", tp.quit)
        return tp, None
    except BenchError as e:
        return None, str(e)


def alternate(opts: Options, chain: Chain, tp: Testpmd | None) -> dict[str, Any]:
    """Warm up, then alternate ``opts.rounds`` windows of spp and testpmd; the figures."""
    window = opts.seconds / max(opts.rounds, 1)
    chain.measure(min(window, 0.5))  # warm-up: compile, caches
    ours: list[float] = []
    ours_cpu: list[float] = []
    theirs: list[float] = []
    theirs_cpu: list[float] = []
    for _ in range(max(opts.rounds, 1)):
        wall, cpu = chain.measure(window)
        ours.append(wall)
        ours_cpu.append(cpu)
        if tp is not None:
            _, tx, elapsed = tp.forward_for(window)
            theirs.append(tx / elapsed / 1e6)
            theirs_cpu.append(tx / max(tp.cpu, 0.01) / 1e6)
    out: dict[str, Any] = {"mpps": max(ours), "mpps_median": round(median(ours), 3),
                           "spp_windows": [round(x, 2) for x in ours], "mpps_per_cpu": round(max(ours_cpu), 3)}
    if theirs:
        out.update(peer_mpps=max(theirs), peer_mpps_per_cpu=round(max(theirs_cpu), 3),
                   ratio_per_cpu=round(max(ours_cpu) / max(theirs_cpu), 3), peer_windows=[round(x, 2) for x in theirs],
                   peer_command=tp.command if tp else None)
    return out


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    from spp.bench.forward import worker_burst
    from spp.components.classifier import Classifier, build_table
    from spp.graph.worker import Attachment

    burst = opts.bursts[0]
    comps: list[Classifier] = []

    def build(pt: PortTable) -> dict[int, tuple[ComponentPlan, ...]]:
        src = pt.get("nullpmd:0", templates=[numbered(i, dst=mac_of(i), size=opts.size) for i in range(N_MACS)])
        sinks = tuple(Attachment(pt.get(f"nullpmd:{1 + j}")) for j in range(N_SINKS))
        table = build_table([(None, mac_int(i), i % N_SINKS) for i in range(N_MACS)])
        comps.append(Classifier(pt.dp, "cls", opts.core).with_table(table))
        return {opts.core: (ComponentPlan(comps[0], (Attachment(src),), sinks),)}

    inner = Cleanup()
    try:
        with worker_burst(burst):
            chain = Chain(inner, [opts.core], build, [f"nullpmd:{1 + j}" for j in range(N_SINKS)])
            tp, peer_error = peer(opts, burst, inner)
            fig = alternate(opts, chain, tp)
            books = chain.books(comps)
    finally:
        inner.run()
    extra: dict[str, Any] = {"burst": burst, "size": opts.size, "macs": N_MACS, "sinks": N_SINKS}
    extra.update({k: v for k, v in fig.items() if k not in ("mpps", "peer_mpps")})
    if peer_error:
        extra["peer_error"] = peer_error
    extra.update(books)
    return [Result("classifier", fig["mpps"], PEER if "peer_mpps" in fig else None, fig.get("peer_mpps"),
                   extra=extra)]


def compare_plans(opts: Options, chain: Chain, ours: dict[int, tuple[ComponentPlan, ...]],
                  theirs: dict[int, tuple[ComponentPlan, ...]]) -> dict[str, Any]:
    """Alternate windows of two plans on the same chain (same workers, ports and rings): the figures.

    ``mpps`` is ``ours``' best window, ``peer_mpps`` the other plan's, ``native`` whether
    ``ours`` ran on the compiled loop (``peer_native`` for the other).
    """
    window = opts.seconds / max(opts.rounds, 1)
    figures: dict[str, list[float]] = {"ours": [], "theirs": []}
    native = {"ours": True, "theirs": True}
    for warm in (True, False):
        for _ in range(1 if warm else max(opts.rounds, 1)):
            for side, plans in (("ours", ours), ("theirs", theirs)):
                chain.plans = plans
                wall, _ = chain.measure(min(window, 0.5) if warm else window)
                if not warm:
                    figures[side].append(wall)
                    native[side] = native[side] and chain.native
    a, b = figures["ours"], figures["theirs"]
    return {"mpps": max(a), "peer_mpps": max(b), "mpps_median": round(median(a), 3),
            "peer_mpps_median": round(median(b), 3), "spp_windows": [round(x, 3) for x in a],
            "peer_windows": [round(x, 3) for x in b], "native": native["ours"], "peer_native": native["theirs"]}
