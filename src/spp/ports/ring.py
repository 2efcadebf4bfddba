"""``ring:N`` — a shared-memory ring of buffer references between processes.

Rings pass buffer ids, never bytes.  Ring N is created (marked in use) the first
time a process opens it.  A full ring takes what fits; the caller counts the rest
as ``ring_full`` on this port.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spp.ports.base import Port, PortId, register_driver
from spp.ports.native import KIND_RING, RING_ACTIVE, ring_rx, ring_tx
from spp.runtime import ringcore
from spp.runtime.dataplane import Dataplane


class RingPort(Port):
    ptype = "ring"
    full_reason = "ring_full"
    native_kind = KIND_RING

    def __init__(self, dp: Dataplane, pid: PortId) -> None:
        dp.check_ring(pid.index)
        super().__init__(dp, pid)
        self.ctrl = dp.ring_ctrl[pid.index]
        self.slots = dp.ring_slots[pid.index]
        self.ctrl[RING_ACTIVE] = 1

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        return int(ring_rx(self.ctrl, self.slots, self.dp.meta, self.dp.stats, self.slot, bufs, 0, n))

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        return int(ring_tx(self.ctrl, self.slots, self.dp.meta, self.dp.stats, self.slot, bufs, 0, n))

    @property
    def count(self) -> int:
        """Buffers waiting in the ring."""
        return int(ringcore.ring_count(self.ctrl))

    def native(self) -> tuple[int, int]:
        return (KIND_RING, self.id.index)


def active_rings(dp: Dataplane) -> list[int]:
    """Indices of rings some process has opened."""
    return [int(i) for i in np.nonzero(dp.ring_ctrl[:, RING_ACTIVE])[0]]


def drain_ring(dp: Dataplane, index: int) -> int:
    """Free every buffer waiting in ring ``index``; return how many."""
    buf = np.empty(256, np.int32)
    total = 0
    while True:
        k = int(ringcore.ring_dequeue(dp.ring_ctrl[index], dp.ring_slots[index], buf, 0, 256))
        if k == 0:
            return total
        dp.free(buf, k)
        total += k


@register_driver("ring")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    return RingPort(dp, pid, **opts)
