"""Throughput of mirroring on the in-memory path: ``python -m spp.mirror.bench [SECONDS]``.

One worker thread forwards ``nullpmd:0`` → ``nullpmd:1`` (64-byte frames) with and
without a port mirror to ``nullpmd:2``, and runs the ``mirror`` component in both copy
modes.  Prints frames per second received from the source.  Numbers depend on the host
and its load; see docs/mirroring.md for figures measured on the build machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from spp.components.forward import Forward
from spp.components.mirror import Mirror
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.mirror.agent import MirrorAgent
from spp.ports.base import Port, PortTable
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import RX_PACKETS
from spp.testing import stack
from spp.testing.packets import numbered

Setup = Callable[[Dataplane, PortTable, MirrorAgent, Port], WorkerPlan]


def measure(setup: Setup, seconds: float = 3.0) -> float:
    """Frames per second through the plan ``setup`` builds (after a 1 s warm-up)."""
    with stack(n_bufs=8192) as dp:
        pt = PortTable(dp)
        src = pt.get("nullpmd:0", template=numbered(1))
        agent = MirrorAgent(dp, pt)
        w = Worker(dp, 0, pin=False)
        try:
            w.start()
            w.publish(setup(dp, pt, agent, src), timeout=120)
            time.sleep(1.0)  # numba compiles on first use
            a, t0 = int(src.stats[RX_PACKETS]), time.perf_counter()
            time.sleep(seconds)
            b, t1 = int(src.stats[RX_PACKETS]), time.perf_counter()
        finally:
            w.publish(WorkerPlan((), 1 << 30))
            w.stop()
            agent.close()
            pt.close_all()
        return (b - a) / (t1 - t0)


def _forward(dp: Dataplane, pt: PortTable, agent: MirrorAgent, src: Port) -> WorkerPlan:
    return WorkerPlan((ComponentPlan(Forward(dp, "f", 0), (Attachment(src),), (Attachment(pt.get("nullpmd:1")),)),),
                      1)


def _python_path(dp: Dataplane, pt: PortTable, agent: MirrorAgent, src: Port) -> WorkerPlan:
    src.add_rx_callback(lambda port, bufs, n: n)
    return _forward(dp, pt, agent, src)


def _port_mirror(copy: str, **filters: str) -> Setup:
    def setup(dp: Dataplane, pt: PortTable, agent: MirrorAgent, src: Port) -> WorkerPlan:
        agent.register("m", "nullpmd:0", "nullpmd:2", "rx", copy=copy, **filters)  # type: ignore[arg-type]
        return _forward(dp, pt, agent, src)

    return setup


def _component(mode: str) -> Setup:
    def setup(dp: Dataplane, pt: PortTable, agent: MirrorAgent, src: Port) -> WorkerPlan:
        tx = (Attachment(pt.get("nullpmd:1")), Attachment(pt.get("nullpmd:2")))
        return WorkerPlan((ComponentPlan(Mirror(dp, "m", 0, copy_mode=mode), (Attachment(src),), tx),), 1)

    return setup


CASES: dict[str, Setup] = {
    "forward, compiled fast path (no mirror)": _forward,
    "forward, Python burst path (a no-op callback)": _python_path,
    "forward + port mirror rx, shallow": _port_mirror("shallow"),
    "forward + port mirror rx, deep": _port_mirror("deep"),
    "forward + port mirror rx, flow filter matching nothing": _port_mirror("shallow", flow="tcp * * * 80"),
    "mirror component, shallow": _component("shallow"),
    "mirror component, deep": _component("deep"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 3.0
    for label, setup in CASES.items():
        print(f"{label:56s} {measure(setup, seconds) / 1e6:7.2f} Mpps", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
