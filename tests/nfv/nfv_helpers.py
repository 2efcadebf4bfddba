"""Helpers for the spp-nfv tests: put frames into a port, take them out of another."""

from __future__ import annotations

import numpy as np

from spp.ports.base import Port
from spp.runtime.dataplane import Dataplane
from spp.testing import wait_for


def put(dp: Dataplane, port: Port, frames: list[bytes]) -> None:
    """Send ``frames`` into ``port`` (e.g. a ring a patch receives from); every one must be taken."""
    ids = np.empty(len(frames), np.int32)
    assert dp.alloc(ids) == len(frames)
    for b, f in zip(ids, frames, strict=True):
        dp.write_frame(int(b), f)
    sent = 0
    while sent < len(frames):
        sent += port.tx_burst(ids[sent:], len(frames) - sent)


def take(dp: Dataplane, port: Port, count: int, timeout: float = 60.0) -> list[bytes]:
    """Receive exactly ``count`` frames from ``port`` (within ``timeout`` s) and free them."""
    got: list[bytes] = []
    bufs = np.empty(32, np.int32)

    def more() -> bool:
        k = port.rx_burst(bufs)
        for b in bufs[:k]:
            got.append(dp.frame(int(b)))
        dp.free(bufs, k)
        return len(got) >= count

    wait_for(more, timeout=timeout, message=lambda: f"{count} frames (got {len(got)})")
    return got
