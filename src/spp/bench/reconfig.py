"""``reconfig``: frames lost while 1,000 ``classifier_table`` add/del run at a steady load.

An spp-vf :class:`~spp.control.manager.Manager` (the typed operations the wire and
REST commands call) runs ``nullpmd:0 → cls → ring:0 / ring:1 → mgr → nullpmd:1`` on
one core; the source cycles through 256 destination MACs, the table maps them to
ring:0 or ring:1 and has a ``default`` (ring:1).  During the measured window one
entry (a MAC the source sends) is added and deleted 500 times each, every change a
new plan the worker adopts between compiled calls.  Figure: frames lost = frames
received − frames delivered − frames still in the rings; every one of them must be
a counted drop (reported by reason), and the goal is 0.
"""

from __future__ import annotations

import os
import time
from typing import Any

from spp.bench.classifier import N_MACS, mac_of
from spp.bench.common import BenchError, Cleanup, Options, Result
from spp.runtime.stats import DROP_BASE, RX_PACKETS, TX_PACKETS, row_to_dict

CHANGES = 1000


def run(opts: Options, cleanup: Cleanup) -> list[Result]:
    from spp.control.manager import Manager
    from spp.ports.base import PortId
    from spp.ports.null import NullPort
    from spp.ports.ring import drain_ring
    from spp.runtime.dataplane import Dataplane, Layout
    from spp.testing import unique_prefix, wait_for
    from spp.testing.packets import numbered

    cores = sorted(os.sched_getaffinity(0))
    core = opts.core if opts.core in cores else cores[-1]
    master = next((c for c in cores if c != core), core + 1)
    dp = Dataplane.create(unique_prefix("bench"), Layout(n_bufs=16384, n_rings=4, ring_size=1024))
    cleanup.push("data plane " + dp.prefix, dp.close)
    m = Manager(dp, cores=[master, core], pin=True)
    cleanup.push("spp-vf manager", m.exit)
    src = NullPort(dp, PortId("nullpmd", 0), templates=[numbered(i, dst=mac_of(i), size=opts.size)
                                                       for i in range(N_MACS)])
    m.provide_port(src)
    for line in (f"component start cls {core} classifier", f"component start mgr {core} merge",
                 "port add nullpmd:0 rx cls", "port add ring:0 tx cls", "port add ring:1 tx cls",
                 "port add ring:0 rx mgr", "port add ring:1 rx mgr", "port add nullpmd:1 tx mgr"):
        reply = m.execute(line)
        if any(r.get("result") != "success" for r in reply.get("results", [reply])):
            raise BenchError(f"{line!r}: {reply}")
    m.classifier_add(None, None, "ring:1")
    for i in range(1, N_MACS):
        m.classifier_add(None, mac_of(i), f"ring:{i % 2}")
    sink = m.port("nullpmd:1")
    wait_for(lambda: int(sink.stats[TX_PACKETS]) > 0, timeout=300, message="first forwarded frame")
    c0, t0 = int(sink.stats[TX_PACKETS]), time.perf_counter()
    for _ in range(CHANGES // 2):
        m.classifier_add(None, mac_of(0), "ring:0")
        m.classifier_del(None, mac_of(0), "ring:0")
    c1, t1 = int(sink.stats[TX_PACKETS]), time.perf_counter()
    workers = m.workers()
    native = all(w._native is not None for w in workers.values())
    comps = m.components()
    for w in workers.values():  # stop the traffic (sending what is buffered) before counting
        w.stop()
    left = drain_ring(dp, 0) + drain_ring(dp, 1)
    ports = [src, m.ports.find("ring:0"), m.ports.find("ring:1"), m.ports.find("nullpmd:1")]
    rx = int(src.stats[RX_PACKETS])
    delivered = int(sink.stats[TX_PACKETS])
    lost = rx - delivered - left
    drops: dict[str, int] = {}
    for p in ports:
        if p is not None:
            pd = row_to_dict(p.stats)["drops"]
            assert isinstance(pd, dict)
            for k, v in pd.items():
                drops[f"{p.id}:{k}"] = int(v)
    for c in comps.values():
        cd = c.stats_dict()["drops"]
        assert isinstance(cd, dict)
        for k, v in cd.items():
            drops[f"{c.name}:{k}"] = int(v)
    counted = sum(drops.values())
    m.exit()
    wait_for(lambda: dp.free_count == dp.n_bufs, timeout=5, message="pool whole")
    extra: dict[str, Any] = {"changes": CHANGES, "seconds": round(t1 - t0, 3),
                             "changes_per_s": round(CHANGES / (t1 - t0), 1),
                             "offered_mpps": round((c1 - c0) / (t1 - t0) / 1e6, 3), "frames": rx,
                             "drops": drops, "native": native, "exact": lost == counted,
                             "drop_fields_total": int(sum(int(p.stats[DROP_BASE:].sum()) for p in ports if p))}
    return [Result("reconfig", float(lost), unit="frames lost", extra=extra)]
