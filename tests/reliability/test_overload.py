"""Overload: a full-speed nullpmd source into a ring read slower (or not at all).

Drops are counted at ring:0 as ``ring_full`` (where they happen), the workers keep
going and keep taking commands (no deadlock, bounded command latency), the ring's
occupancy — hence the queueing delay — is bounded by its size, and when the load
falls the ring drains and the ledger balances.
"""

from __future__ import annotations

import time

from spp.control.manager import Manager
from spp.ports.ring import drain_ring
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import DROP_BASE, DROP_REASONS, RX_PACKETS, TX_PACKETS
from spp.testing import wait_for
from spp.testing.conservation import check_all, hop_ledgers, port_drops, port_ledger, ring_waiting


def ok(m: Manager, *lines: str) -> None:
    for line in lines:
        reply = m.execute(line)
        assert reply == {"results": [{"result": "success"}]}, (line, reply)


def offered(dp: Dataplane) -> int:
    return int(dp.stats[dp.port_slot("nullpmd", 0)][RX_PACKETS])


def ring_full(dp: Dataplane) -> int:
    return port_drops(dp, "ring:0").get("ring_full", 0)


def test_overload_counts_at_the_ring_and_recovers(dp: Dataplane) -> None:
    m = Manager(dp, cores=[0, 1, 2], pin=False)
    try:
        ok(m, "component start gen 1 forward", "port add nullpmd:0 rx gen", "port add ring:0 tx gen")
        # nobody reads ring:0: it fills, then every further frame is a ring_full drop at ring:0
        wait_for(lambda: ring_full(dp) > 10_000, timeout=60, message="ring_full drops at ring:0")
        size = dp.layout.ring_size
        assert size - 1 <= ring_waiting(dp, "ring:0") <= size
        # still running, still answering: no deadlock, bounded command latency
        start = time.monotonic()
        ok(m, "component start out 2 forward", "port add ring:0 rx out", "port add nullpmd:1 tx out")
        assert time.monotonic() - start < 5.0
        before = offered(dp)
        wait_for(lambda: offered(dp) > before + 50_000, timeout=30, message="the source to keep going")
        # queueing delay is bounded: never more than a ring's worth waiting
        assert ring_waiting(dp, "ring:0") <= size
        # the load falls: the ring drains, drops stop
        ok(m, "port del nullpmd:0 rx gen")
        wait_for(lambda: ring_waiting(dp, "ring:0") == 0, timeout=30, message="ring:0 to drain")
        comps = list(m.components().values())
        wait_for(lambda: port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=["ring:0"],
                                     components=comps).balance == 0, timeout=10,
                 message=lambda: port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=["ring:0"],
                                             components=comps).report())
        dropped = ring_full(dp)
        ledger = port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=["ring:0"], components=comps,
                             name="overload")
        ledger.check()
        check_all(hop_ledgers(dp, ["ring:0"]))
        # every drop is at the ring, under ring_full; the components dropped nothing
        assert ledger.drops_by_reason() == {"ring_full": dropped}
        for comp in comps:
            assert not comp.drops[DROP_BASE:DROP_BASE + len(DROP_REASONS)].any()
        # recovered: the same source, re-attached through a longer path, flows again
        ok(m, "port del ring:0 tx gen", "port add nullpmd:0 rx gen", "port add ring:1 tx gen",
           "component start mid 2 forward", "port add ring:1 rx mid", "port add ring:0 tx mid")
        before = int(dp.stats[dp.port_slot("nullpmd", 1)][TX_PACKETS])
        wait_for(lambda: int(dp.stats[dp.port_slot("nullpmd", 1)][TX_PACKETS]) > before + 20_000, timeout=30,
                 message="frames through gen → ring:1 → mid → ring:0 → out")
    finally:
        m.execute("exit")
        for i in (0, 1):
            drain_ring(dp, i)
