"""``vlan``: ``forward`` with a VLAN operation on its tx port, beside the same forward without one.

One worker on ``--core`` forwards ``nullpmd:0`` → ``nullpmd:1`` (the ``forward``
scenario's path); the two plans take turns (``--rounds`` windows each) in the same
run, so the ratio is the cost of the tag operation alone:

* ``add_vlantag`` (``port add nullpmd:1 tx fwd add_vlantag 100 3``) on untagged
  frames, versus no operation (goal ≥ 0.8);
* ``del_vlantag`` on frames tagged with VLAN 100, versus no operation.

``native`` says whether the worker with the tag operation ran the compiled loop,
``peer_native`` the one without.  The books: every frame received was sent or
counted, and (checked on one burst after the run) the tag was really pushed or
popped.
"""

from __future__ import annotations

from typing import Any

from spp.bench.classifier import Chain, compare_plans
from spp.bench.common import BenchError, Cleanup, Options, Result
from spp.graph.worker import ComponentPlan
from spp.ports.base import PortTable
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS

PEER = "same forward without a tag operation"
VID, PCP = 100, 3


def _run(opts: Options, operation: str) -> Result:
    from spp.bench.forward import worker_burst
    from spp.components.forward import Forward
    from spp.components.vlan import VlanOp
    from spp.graph.worker import Attachment
    from spp.testing.packets import numbered

    core = opts.core
    plans: dict[str, dict[int, tuple[ComponentPlan, ...]]] = {}
    op = VlanOp("add", VID, PCP) if operation == "add" else VlanOp("del")

    def build(pt: PortTable) -> dict[int, tuple[ComponentPlan, ...]]:
        frame = numbered(1, size=opts.size, vlan=None if operation == "add" else VID)
        src = Attachment(pt.get("nullpmd:0", template=frame))
        dst = pt.get("nullpmd:1")
        fwd = Forward(pt.dp, "fwd", core)
        plans["tag"] = {core: (ComponentPlan(fwd, (src,), (Attachment(dst, op),)),)}
        plans["plain"] = {core: (ComponentPlan(fwd, (src,), (Attachment(dst),)),)}
        return plans["tag"]

    inner = Cleanup()
    try:
        with worker_burst(opts.bursts[0]):
            chain = Chain(inner, [core], build, ["nullpmd:1"])
            fig = compare_plans(opts, chain, plans["tag"], plans["plain"])
            books = chain.books()
            src, dst = chain.ports.find("nullpmd:0"), chain.ports.find("nullpmd:1")
            assert src is not None and dst is not None
            if int(src.stats[RX_PACKETS]) != int(dst.stats[TX_PACKETS]) + int(
                    src.stats[DROP_BASE:].sum() + dst.stats[DROP_BASE:].sum()):
                books["exact"] = False
            books["tagged_ok"] = _check_tag(chain, plans["tag"], operation)
    finally:
        inner.run()
    extra: dict[str, Any] = {"operation": f"{operation}_vlantag", "size": opts.size, "burst": opts.bursts[0],
                             "rounds": max(opts.rounds, 1)}
    if operation == "add":
        extra["goal"] = "ratio ≥ 0.8"
    extra.update({k: v for k, v in fig.items() if k not in ("mpps", "peer_mpps")})
    extra.update({k: v for k, v in books.items() if k != "native"})
    return Result("vlan", fig["mpps"], PEER, fig["peer_mpps"], extra=extra)


def _check_tag(chain: Chain, plans: dict[int, tuple[ComponentPlan, ...]], operation: str) -> bool:
    """One burst through the tag plan into a ring: is the tag there (add) or gone (del)?"""
    import numpy as np

    from spp.graph.worker import Attachment, Worker, WorkerPlan

    ((core, (cp,)),) = plans.items()
    ring = chain.ports.get("ring:7")
    w = Worker(chain.dp, core, pin=False)
    w.start()
    try:
        plan = ComponentPlan(cp.component, cp.rx, (Attachment(ring, cp.tx[0].vlan),))
        w.publish(WorkerPlan((plan,), 1), timeout=300)
        ids = np.zeros(8, np.int32)
        from spp.testing import wait_for

        k = wait_for(lambda: ring.rx_burst(ids, 8), timeout=60, message="a tagged burst")
        w.publish(WorkerPlan((), 2), timeout=60)
    finally:
        w.stop()
    frames = [chain.dp.frame(int(b)) for b in ids[:k]]
    chain.dp.free(ids, k)
    from spp.ports.ring import drain_ring

    drain_ring(chain.dp, 7)
    tagged = [f[12:14] == b"\x81\x00" and int.from_bytes(f[14:16], "big") & 0xFFF == VID for f in frames]
    if not frames:
        raise BenchError("no frame came through the tag plan")
    return all(tagged) if operation == "add" else not any(f[12:14] == b"\x81\x00" for f in frames)


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    return [_run(opts, "add"), _run(opts, "del")]
