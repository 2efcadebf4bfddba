"""``mirror-overhead``: nullpmd → forward → nullpmd with and without a zero-copy port mirror.

The forwarding path is the ``forward`` scenario's (one worker on ``--core``, the
compiled loop).  A shared port mirror (:class:`spp.mirror.MirrorAgent`, shallow, no
filter, direction ``rx`` on nullpmd:0, destination nullpmd:2) is registered and
unregistered between windows, so both figures come from the same run: spp's figure
is the forwarding rate with the mirror, the "peer" the rate without it, and the ratio
their quotient (goal ≥ 0.9).  The mirror's own statistics (``packets`` must equal
the frames received while it was attached, ``full``/``nombuf`` 0) are reported.
"""

from __future__ import annotations

from typing import Any

from spp.bench.classifier import Chain
from spp.bench.common import BenchError, Cleanup, Options, Result, median
from spp.graph.worker import ComponentPlan
from spp.ports.base import PortTable
from spp.runtime.stats import RX_PACKETS

PEER = "same path without the mirror"


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    from spp.bench.forward import worker_burst
    from spp.components.forward import Forward
    from spp.graph.worker import Attachment
    from spp.mirror import MirrorAgent

    burst = opts.bursts[0]

    def build(pt: PortTable) -> dict[int, tuple[ComponentPlan, ...]]:
        src, dst = pt.get("nullpmd:0", size=opts.size), pt.get("nullpmd:1")
        pt.get("nullpmd:2")
        return {opts.core: (ComponentPlan(Forward(pt.dp, "fwd", opts.core), (Attachment(src),),
                                          (Attachment(dst),)),)}

    window = opts.seconds / max(opts.rounds, 1)
    inner = Cleanup()
    try:
        with worker_burst(burst):
            chain = Chain(inner, [opts.core], build, ["nullpmd:1"])
            agent = MirrorAgent(chain.dp, chain.ports)
            inner.push("mirror agent", agent.close)
            chain.measure(min(window, 0.5))  # warm-up without the mirror
            agent.register("ovh", "nullpmd:0", "nullpmd:2", "rx")
            agent.poll(force=True)
            chain.measure(min(window, 0.5))  # warm-up with it (compiles the mirror path)
            agent.unregister("ovh")
            agent.poll(force=True)
            plain: list[float] = []
            mirrored: list[float] = []
            natives: list[bool] = []
            mstats: dict[str, int] = {}
            seen = 0  # frames received while the mirror was attached
            for _ in range(max(opts.rounds, 1)):
                plain.append(chain.measure(window)[0])
                agent.register("ovh", "nullpmd:0", "nullpmd:2", "rx")
                agent.poll(force=True)
                src = chain.ports.find("nullpmd:0")
                assert src is not None
                if not src.has_callbacks:
                    raise BenchError("the mirror did not attach to nullpmd:0")
                rx0 = int(src.stats[RX_PACKETS])
                mirrored.append(chain.measure(window)[0])
                seen += int(src.stats[RX_PACKETS]) - rx0
                natives.append(chain.native)
                for k, v in agent.stats("ovh").items():
                    mstats[k] = mstats.get(k, 0) + int(v)
                agent.unregister("ovh")
                agent.poll(force=True)
            books = chain.books()
    finally:
        inner.run()
    extra: dict[str, Any] = {"burst": burst, "size": opts.size, "copy": "shallow", "destination": "nullpmd:2",
                             "mpps_median": round(median(mirrored), 3), "spp_windows": [round(x, 2) for x in mirrored],
                             "peer_mpps_median": round(median(plain), 3), "peer_windows": [round(x, 2) for x in plain],
                             "native_with_mirror": all(natives), "mirror_stats": mstats,
                             "mirrored_frames": seen}
    extra.update(books)
    extra["exact"] = bool(books["exact"]) and mstats.get("packets") == seen and not (
        mstats.get("full") or mstats.get("nombuf") or mstats.get("errors"))
    return [Result("mirror-overhead", max(mirrored), PEER, max(plain), extra=extra)]
