"""``vf-chain``: SPEC §3's "classify ICMP" chain with null ends, on 2 cores.

``nullpmd:0 → cls (classifier) → ring:0 / ring:1 → fwd1 / fwd2 → ring:2 / ring:3 →
mgr (merge) → nullpmd:1``.  The source cycles through two template frames, one per
classifier entry (``52:54:00:12:34:56`` → ring:0, ``52:54:00:12:34:58`` → ring:1).
Two results: ``2 cores`` — the classifier alone on core 0, fwd1, fwd2 and mgr on
core 1 (this host has two cores: spp's workers are threads of one process here, so
no master lcore is reserved) — and, for comparison, ``1 core`` — all four on
``--core``.  The figure is frames delivered to nullpmd:1 per second; frames the
rings refuse are counted ``ring_full`` (the null source offers far more than the
consumers take: see docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from spp.bench.classifier import Chain, alternate
from spp.bench.common import Cleanup, Options, Result
from spp.graph.worker import ComponentPlan
from spp.ports.base import PortTable

MACS = ("52:54:00:12:34:56", "52:54:00:12:34:58")


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    return [_run(opts, two) for two in (True, False)]


def _run(opts: Options, two_cores: bool) -> Result:
    from spp.bench.forward import worker_burst
    from spp.components.classifier import Classifier, build_table
    from spp.components.forward import Forward, Merge
    from spp.graph.worker import Attachment
    from spp.testing.packets import numbered

    burst = opts.bursts[0]
    comps: list[Any] = []

    def build(pt: PortTable) -> dict[int, tuple[ComponentPlan, ...]]:
        dp = pt.dp
        src = pt.get("nullpmd:0", templates=[numbered(i, dst=m, size=opts.size) for i, m in enumerate(MACS)])
        r = [pt.get(f"ring:{i}") for i in range(4)]
        sink = pt.get("nullpmd:1")
        table = build_table([(None, int(m.replace(":", ""), 16), i) for i, m in enumerate(MACS)])
        cls = Classifier(dp, "cls", 0).with_table(table)
        fwd1, fwd2, mgr = Forward(dp, "fwd1", 1), Forward(dp, "fwd2", 1), Merge(dp, "mgr", 1)
        comps.extend([cls, fwd1, fwd2, mgr])
        a = Attachment
        first = (ComponentPlan(cls, (a(src),), (a(r[0]), a(r[1]))),)
        rest = (ComponentPlan(fwd1, (a(r[0]),), (a(r[2]),)), ComponentPlan(fwd2, (a(r[1]),), (a(r[3]),)),
                ComponentPlan(mgr, (a(r[2]), a(r[3])), (a(sink),)))
        return {0: first, 1: rest} if two_cores else {opts.core: first + rest}

    inner = Cleanup()
    try:
        with worker_burst(burst):
            chain = Chain(inner, [0, 1] if two_cores else [opts.core], build, ["nullpmd:1"])
            fig = alternate(opts, chain, None)
            books = chain.books(comps)
    finally:
        inner.run()
    extra: dict[str, Any] = {"burst": burst, "size": opts.size, "cores": 2 if two_cores else 1}
    extra.update({k: v for k, v in fig.items() if k != "mpps"})
    extra.update(books)
    return Result("vf-chain", fig["mpps"], extra=extra)
