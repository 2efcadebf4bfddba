"""An in-memory port for unit tests of one component or callback: frames injected
from Python come out of ``rx_burst``; what is transmitted is collected as bytes."""

from __future__ import annotations

from collections import deque

import numpy as np

from spp.ports.base import Port, PortId
from spp.runtime.dataplane import DATA_ROOM, ETHER_MIN, Dataplane


class MemoryPort(Port):
    """A fake port.  ``inject(frames)`` queues frames; ``sent`` collects transmitted ones.

    ``tx_room`` limits how many frames one ``tx_burst`` accepts (fault injection:
    ``0`` behaves like a full queue).  Uses the ``pcap`` stats slot of its index.
    """

    ptype = "pcap"

    def __init__(self, dp: Dataplane, index: int = 0, tx_room: int | None = None) -> None:
        super().__init__(dp, PortId("pcap", index))
        self.pending: deque[bytes] = deque()
        self.sent: list[bytes] = []
        self.tx_room = tx_room

    def inject(self, frames: list[bytes]) -> None:
        self.pending.extend(frames)

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        k = 0
        nbytes = 0
        while self.pending and k < n:
            frame = self.pending.popleft()
            if len(frame) < ETHER_MIN:
                self.count_drop("runt")
                continue
            if len(frame) > DATA_ROOM:
                self.count_drop("too_long")
                continue
            got = self.dp.alloc(bufs[k : k + 1])
            if not got:
                self.count_drop("nombuf")
                continue
            self.dp.write_frame(int(bufs[k]), frame)
            nbytes += len(frame)
            k += 1
        self.count_rx(k, nbytes)
        return k

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        k = n if self.tx_room is None else min(n, self.tx_room)
        nbytes = 0
        for i in range(k):
            f = self.dp.frame(int(bufs[i]))
            self.sent.append(f)
            nbytes += len(f)
        self.count_tx(k, nbytes)
        if k:
            self.dp.free(bufs[:k].copy(), k)
        return k
