"""``nullpmd:N`` — a null source and sink (DPDK's ``net_null``), for benchmarks.

Receive hands out fresh buffers of ``size`` bytes (64 by default; contents are
whatever the buffer last held unless a ``template`` frame is given, which is copied
in, or several ``templates`` of one size, copied in turn, one per frame, e.g. to vary
destination MACs); transmit counts and frees.  A source that finds the pool empty returns fewer
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

    def __init__(self, dp: Dataplane, pid: PortId, size: int = 64, template: bytes | None = None,
                 templates: list[bytes] | tuple[bytes, ...] | None = None) -> None:
        super().__init__(dp, pid)
        if template is not None and templates is not None:
            raise PortError(f"{pid}: give either template (one frame) or templates (several), not both")
        if template is not None:
            templates = [template]
        if templates is not None:
            if not templates:
                raise PortError(f"{pid}: templates is empty; give at least one frame")
            sizes = sorted({len(t) for t in templates})
            if len(sizes) > 1:
                raise PortError(f"{pid}: templates have sizes {sizes}; all must have the same size")
            size = sizes[0]
        if not ETHER_MIN <= size <= DATA_ROOM:
            raise PortError(f"{pid}: frame size {size} must be {ETHER_MIN}..{DATA_ROOM}")
        self.size = size
        self.template = None if template is None else np.frombuffer(template, np.uint8)
        #: The template frames, one per row (None: contents unspecified).
        self.templates = None if templates is None else np.array([np.frombuffer(t, np.uint8) for t in templates])
        #: Index of the template the next received frame gets (the compiled worker loop updates it too).
        self.cursor = 0

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        dp = self.dp
        k = int(null_rx(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.stats, self.slot, bufs, 0, n,
                        self.size))
        tm = self.templates
        if tm is not None and k:
            idx = (self.cursor + np.arange(k)) % len(tm)
            dp.data[bufs[:k], HEADROOM : HEADROOM + self.size] = tm[idx]
            self.cursor = int(idx[-1] + 1) % len(tm)
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
