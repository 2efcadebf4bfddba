"""Helpers for the mirror tests: ports with fault injection built on the null driver."""

from __future__ import annotations

import numpy as np

from spp.ports.native import null_tx
from spp.ports.null import NullPort


class FlakySink(NullPort):
    """A null sink that refuses part of every other burst (a tx queue full half the time).

    Call ``i`` accepts everything when ``i`` is even and ``i * 7 % (n + 1)`` frames when
    odd, so every split point of a burst occurs.
    """

    calls = 0

    def native(self) -> tuple[int, int]:
        return (0, 0)  # a Python driver: the compiled loop would take it for a plain null sink

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        self.calls += 1
        k = n if self.calls % 2 == 0 else (self.calls * 7) % (n + 1)
        dp = self.dp
        return int(null_tx(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.header, dp.stats, self.slot,
                           bufs, 0, k))
