"""spp.testing.conservation: balances a real path, and names the hop of a silent loss."""

from __future__ import annotations

import numpy as np
import pytest

from spp.control.manager import Manager
from spp.ports.base import PortId
from spp.ports.null import NullPort
from spp.ports.ring import RingPort, drain_ring
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for
from spp.testing.conservation import ConservationError, Ledger, check_all, hop_ledgers, port_ledger, status_drops
from spp.testing.packets import numbered


def test_forward_path_balances_with_ring_full_drops(dp: Dataplane) -> None:
    """A source faster than its reader: ring_full is counted at ring:0 and the ledger balances."""
    src = NullPort(dp, PortId("nullpmd", 0), template=numbered(1))
    ring = RingPort(dp, PortId("ring", 0))
    m = Manager(dp, cores=[0, 1], pin=False)
    bufs = np.empty(32, np.int32)
    try:
        for _ in range(40):  # 1280 frames into a 512-slot ring nobody reads yet
            k = src.rx_burst(bufs, 32)
            acc = ring.tx_burst(bufs, k)
            if acc < k:
                ring.count_drop("ring_full", k - acc)
                dp.free(bufs[acc:k], k - acc)
        assert m.execute("component start out 1 forward")["results"][0]["result"] == "success"
        for line in ("port add ring:0 rx out", "port add nullpmd:1 tx out"):
            assert m.execute(line)["results"][0]["result"] == "success"
        wait_for(lambda: ring.count == 0, timeout=60, message="ring:0 to drain")
        comps = list(m.components().values())
        wait_for(lambda: port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=["ring:0"],
                                     components=comps).balance == 0, timeout=10)
        ledger = port_ledger(dp, sources=["nullpmd:0"], sinks=["nullpmd:1"], through=["ring:0"], components=comps)
        ledger.check()
        assert ledger.drops_by_reason()["ring_full"] >= 1280 - dp.layout.ring_size
        assert ledger.offered == {"nullpmd:0 rx": 1280}
        check_all(hop_ledgers(dp, ["ring:0"]))
        assert status_drops(m.status()) == {"out": {}}
    finally:
        m.execute("exit")
        src.close()
        ring.close()
        drain_ring(dp, 0)


def test_silent_loss_is_reported_with_a_readable_ledger(dp: Dataplane) -> None:
    ring = RingPort(dp, PortId("ring", 1))
    bufs = np.empty(8, np.int32)
    try:
        assert dp.alloc(bufs, 8) == 8
        assert ring.tx_burst(bufs, 8) == 8
        assert ring.rx_burst(bufs, 8) == 8
        dp.free(bufs[:3], 3)  # three frames "delivered" below, five vanish without a count
        ledger = hop_ledgers(dp, ["ring:1"])[0]
        ledger.check()  # the ring itself balanced
        path = Ledger("test path")
        path.offer("ring:1 rx", 8)
        path.deliver("sink", 3)
        with pytest.raises(ConservationError) as exc:
            path.check()
        text = str(exc.value)
        assert "ledger test path" in text and "= 5" in text and "lost without a count" in text
        dp.free(bufs[3:8], 5)
    finally:
        ring.close()
