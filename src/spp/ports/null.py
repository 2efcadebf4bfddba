"""``nullpmd:N`` — a null source and sink (DPDK's ``net_null``), for benchmarks.

Receive hands out fresh buffers of ``size`` bytes (64 by default; contents are
whatever the buffer last held unless a ``template`` frame is given, which is copied
in); transmit counts and frees.  A source that finds the pool empty returns fewer
buffers: nothing was lost, so nothing is counted as a drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spp.ports.base import Port, PortError, PortId, register_driver
from spp.ports.native import KIND_NULL, null_rx, null_tx
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, HEADROOM, Dataplane


class NullPort(Port):
    ptype = "nullpmd"
    native_kind = KIND_NULL

    def __init__(self, dp: Dataplane, pid: PortId, size: int = 64, template: bytes | None = None) -> None:
        super().__init__(dp, pid)
        if template is not None:
            size = len(template)
        if not ETHER_MIN <= size <= DATA_ROOM:
            raise PortError(f"{pid}: frame size {size} must be {ETHER_MIN}..{DATA_ROOM}")
        self.size = size
        self.template = None if template is None else np.frombuffer(template, np.uint8)

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        dp = self.dp
        k = int(null_rx(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.stats, self.slot, bufs, 0, n,
                        self.size))
        if self.template is not None and k:
            dp.data[bufs[:k], HEADROOM : HEADROOM + self.size] = self.template
        return k

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        dp = self.dp
        return int(null_tx(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.header, dp.stats, self.slot,
                           bufs, 0, n))

    def native(self) -> tuple[int, int]:
        return (KIND_NULL, self.size)


@register_driver("nullpmd")
def _make(dp: Dataplane, pid: PortId, opts: dict[str, Any]) -> Port:
    return NullPort(dp, pid, **opts)
