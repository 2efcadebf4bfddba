"""The compiled worker loop: exact counters, reference counts and a whole pool after every call."""

from __future__ import annotations

import numpy as np
import pytest

from spp.graph.loop import native_run
from spp.ports.native import KIND_NULL, KIND_RING
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import REASON, RX_BYTES, RX_PACKETS, TX_BYTES, TX_PACKETS


class Plan:
    """Arrays for ``native_run``: one component per (rx list, tx) pair."""

    def __init__(self, dp: Dataplane, comps: list[tuple[list[tuple[int, int, int]], tuple[int, int, int]]],
                 burst: int = 32) -> None:
        n = len(comps)
        max_rx = max(len(rx) for rx, _ in comps)
        self.dp = dp
        self.burst = burst
        self.n_rx = np.array([len(rx) for rx, _ in comps], np.int64)
        self.rx = np.zeros((3, n, max_rx), np.int64)
        self.tx = np.zeros((3, n), np.int64)
        for c, (rx, tx) in enumerate(comps):
            for r, spec in enumerate(rx):
                self.rx[:, c, r] = spec
            self.tx[:, c] = tx
        self.txbuf = np.zeros((n, 2 * burst), np.int32)
        self.txcnt = np.zeros(n, np.int64)

    def run(self, iters: int) -> int:
        dp = self.dp
        return int(native_run(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.header, dp.ring_ctrl,
                              dp.ring_slots, dp.stats, self.n_rx, self.rx[0], self.rx[1], self.rx[2], self.tx[0],
                              self.tx[1], self.tx[2], self.txbuf, self.txcnt, iters, self.burst,
                              REASON["ring_full"], REASON["tx_full"]))


def null(dp: Dataplane, i: int, size: int = 64) -> tuple[int, int, int]:
    return (KIND_NULL, size, dp.port_slot("nullpmd", i))


def ring(dp: Dataplane, i: int) -> tuple[int, int, int]:
    return (KIND_RING, i, dp.port_slot("ring", i))


def drain(dp: Dataplane, i: int) -> int:
    buf = np.empty(dp.layout.ring_size, np.int32)
    k = int(ringcore.ring_dequeue(dp.ring_ctrl[i], dp.ring_slots[i], buf, 0, len(buf)))
    dp.free(buf, k)
    return k


@pytest.mark.parametrize("burst", [32, 64])
def test_null_to_null_counts_exact_and_pool_whole(dp: Dataplane, burst: int) -> None:
    p = Plan(dp, [([null(dp, 0, 100)], null(dp, 1))], burst)
    got = p.run(50)
    assert got == 50 * burst
    src, dst = dp.stats[null(dp, 0)[2]], dp.stats[null(dp, 1)[2]]
    assert (src[RX_PACKETS], src[RX_BYTES]) == (got, got * 100)
    assert (dst[TX_PACKETS], dst[TX_BYTES]) == (got, got * 100)
    assert dp.free_count == dp.n_bufs  # the local cache went back to the pool
    assert p.txcnt.sum() == 0


def test_full_ring_counts_ring_full_and_frees(dp: Dataplane) -> None:
    p = Plan(dp, [([null(dp, 0)], ring(dp, 0))])
    got = p.run(40)  # 1280 frames into a 512-slot ring
    r = dp.stats[ring(dp, 0)[2]]
    assert int(r[TX_PACKETS]) == 512
    assert int(r[REASON["ring_full"]]) == got - 512
    assert dp.in_use == 512  # exactly the frames waiting in the ring
    assert drain(dp, 0) == 512
    assert dp.free_count == dp.n_bufs


def test_ring_chain_meta_and_bytes(dp: Dataplane) -> None:
    p = Plan(dp, [([null(dp, 0, 77)], ring(dp, 1)), ([ring(dp, 1)], null(dp, 2))])
    got = p.run(30)
    dst = dp.stats[null(dp, 2)[2]]
    rr = dp.stats[ring(dp, 1)[2]]
    assert int(rr[RX_PACKETS]) + ringcore.ring_count(dp.ring_ctrl[1]) == int(rr[TX_PACKETS])
    assert int(dst[TX_PACKETS]) == int(rr[RX_PACKETS])
    assert int(dst[TX_BYTES]) == 77 * int(dst[TX_PACKETS])
    assert got >= int(dst[TX_PACKETS])
    drain(dp, 1)


def test_shared_buffers_keep_their_other_reference(dp: Dataplane) -> None:
    ids = np.zeros(100, np.int32)
    assert dp.alloc(ids) == 100
    for b in ids:
        dp.write_frame(int(b), b"\x00" * 60)
    dp.ref(ids.copy())  # a second owner (a mirror, say)
    assert ringcore.ring_enqueue(dp.ring_ctrl[0], dp.ring_slots[0], ids.copy(), 0, 100) == 100
    p = Plan(dp, [([ring(dp, 0)], null(dp, 0))])
    assert p.run(8) == 100  # 4 busy passes, then idle ones: counters published mid-call and at the end
    assert int(dp.stats[ring(dp, 0)[2]][RX_PACKETS]) == 100  # once each, not twice
    assert int(dp.stats[null(dp, 0)[2]][TX_PACKETS]) == 100
    assert int(dp.stats[null(dp, 0)[2]][TX_BYTES]) == 6000
    assert (dp.refcnt[ids] == 1).all()  # our reference dropped, theirs kept
    assert dp.in_use == 100
    dp.free(ids.copy())
    assert dp.free_count == dp.n_bufs
    assert dp.double_frees == 0


def test_double_free_is_counted_not_corrupting(dp: Dataplane) -> None:
    ids = np.zeros(4, np.int32)
    dp.alloc(ids)
    ringcore.ring_enqueue(dp.ring_ctrl[0], dp.ring_slots[0], np.concatenate([ids, ids[:1]]), 0, 5)
    p = Plan(dp, [([ring(dp, 0)], null(dp, 0))])
    p.run(3)
    assert dp.double_frees == 1
    assert dp.free_count == dp.n_bufs
    dp.header[13] = 0  # H_DOUBLE_FREE: reset so the fixture's leak check passes


def test_small_pool_partial_bursts(dp: Dataplane) -> None:
    from spp.testing import stack

    with stack(n_bufs=64) as small:
        p = Plan(small, [([null(small, 0)], ring(small, 0))])
        p.run(10)
        assert int(small.stats[ring(small, 0)[2]][TX_PACKETS]) == 64  # the pool, not the ring, ran out
        assert small.free_count == 0
        drain(small, 0)
