"""``mirror-component``: spp-mirror's ``mirror`` component beside spp-vf's ``forward``, on the same rings.

One worker on ``--core`` runs a chain over rings: ``nullpmd:0`` → forward → ``ring:0``
(the source), then the component measured, then forwards from its rings to null
sinks.  The two plans take turns (``--rounds`` windows each) in the same run:

* ours: ``mirror`` (shallow: the duplicate shares the buffer) ``ring:0`` →
  ``ring:1`` + ``ring:2``, sinks ``ring:1`` → ``nullpmd:1``, ``ring:2`` → ``nullpmd:2``;
* peer: ``forward`` ``ring:0`` → ``ring:1``, sink ``ring:1`` → ``nullpmd:1``.

The figure is frames per second through the component (originals reaching
``nullpmd:1``); ``ratio`` is mirror ÷ forward (goal ≥ 0.5: the mirror moves each
frame to two rings, and its chain has one sink more).  ``native`` says whether the
mirror's worker ran the compiled loop, ``peer_native`` the forward's.
"""

from __future__ import annotations

from typing import Any

from spp.bench.classifier import Chain, compare_plans
from spp.bench.common import Cleanup, Options, Result
from spp.graph.worker import ComponentPlan
from spp.ports.base import PortTable
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS

PEER = "spp forward on the same rings"


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    from spp.bench.forward import worker_burst
    from spp.components.forward import Forward
    from spp.components.mirror import Mirror
    from spp.graph.worker import Attachment
    from spp.ports.ring import RingPort, drain_ring

    core = opts.core
    plans: dict[str, dict[int, tuple[ComponentPlan, ...]]] = {}
    mirror: list[Mirror] = []

    def build(pt: PortTable) -> dict[int, tuple[ComponentPlan, ...]]:
        dp = pt.dp

        def fwd(name: str, src: str, dst: str) -> ComponentPlan:
            return ComponentPlan(Forward(dp, name, core), (Attachment(pt.get(src)),), (Attachment(pt.get(dst)),))

        pt.get("nullpmd:0", size=opts.size)
        source = fwd("source", "nullpmd:0", "ring:0")
        sink1, sink2 = fwd("sink1", "ring:1", "nullpmd:1"), fwd("sink2", "ring:2", "nullpmd:2")
        m = Mirror(dp, "mir", core)
        m.copy_mode = "shallow"
        mirror.append(m)
        plans["mirror"] = {core: (source, ComponentPlan(m, (Attachment(pt.get("ring:0")),),
                                                         (Attachment(pt.get("ring:1")), Attachment(pt.get("ring:2")))),
                                  sink1, sink2)}
        plans["forward"] = {core: (source, fwd("fwd", "ring:0", "ring:1"), sink1)}
        return plans["mirror"]

    inner = Cleanup()
    try:
        with worker_burst(opts.bursts[0]):
            chain = Chain(inner, [core], build, ["nullpmd:1"])
            fig = compare_plans(opts, chain, plans["mirror"], plans["forward"])
            for w in chain.workers.values():
                w.stop()
            ports = {str(p.id): p for p in chain.ports.all()}
            left = {name: drain_ring(chain.dp, p.id.index) for name, p in ports.items() if isinstance(p, RingPort)}
            rx = int(ports["nullpmd:0"].stats[RX_PACKETS])
            primary = ("nullpmd:0", "ring:0", "ring:1", "nullpmd:1")
            drops = sum(int(ports[n].stats[DROP_BASE:].sum()) for n in primary) + int(mirror[0].drops.sum())
            out1 = int(ports["nullpmd:1"].stats[TX_PACKETS])
            left_primary = left.get("ring:0", 0) + left.get("ring:1", 0)
            whole = chain.dp.free_count == chain.dp.n_bufs and chain.dp.double_frees == 0
    finally:
        inner.run()
        cleanup.errors.extend(inner.errors)
    extra: dict[str, Any] = {"burst": opts.bursts[0], "size": opts.size, "copy": "shallow",
                             "rounds": max(opts.rounds, 1), "goal": "ratio ≥ 0.5"}
    extra.update({k: v for k, v in fig.items() if k not in ("mpps", "peer_mpps")})
    extra["mirrored_frames"] = int(ports["nullpmd:2"].stats[TX_PACKETS])
    # every frame taken from the source reached nullpmd:1, was counted as dropped, or is still in a ring
    extra["exact"] = rx == out1 + drops + left_primary and whole
    return [Result("mirror-component", fig["mpps"], PEER, fig["peer_mpps"], extra=extra)]
