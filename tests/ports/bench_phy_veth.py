"""Rough phy:N rate on a veth pair (not a test; needs root).  Run::

    python3 tests/ports/bench_phy_veth.py [frame_size] [seconds]

A sender process moves frames nullpmd:0 → phy:0 (one veth end); the receiving process
polls phy:1 (the other end) and frees what it gets.  Both ends sit in this namespace.
Prints tx and rx rates, drops during the measurement and the receiver's CPU share (the
sender's ``send`` carries the kernel's whole veth path, so it is the limit).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from typing import Any

import numpy as np

from spp.ports.base import open_port
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import RX_PACKETS, TX_PACKETS, total_drops
from spp.testing import stack
from spp.testing.netns import unique_ifname, veth_pair
from spp.testing.packets import numbered


def _sender(prefix: str, iface: str, stop: Any, size: int) -> None:
    dp = Dataplane.attach(prefix)
    src = open_port(dp, "nullpmd:0", template=numbered(0, size=size))
    out = open_port(dp, "phy:0", iface=iface)
    bufs = np.zeros(32, np.int32)
    while not stop.is_set():
        k = src.rx_burst(bufs)
        m = out.tx_burst(bufs, k)
        if m < k:
            dp.free(bufs[m:k].copy(), k - m)
            out.count_drop(out.full_reason, k - m)
    out.close()
    dp.close()


def main(size: int = 64, seconds: float = 5.0) -> None:
    a, b = unique_ifname("sppba"), unique_ifname("sppbb")
    with stack(n_bufs=16384, check=False) as dp, veth_pair(a, b):
        rx = open_port(dp, "phy:1", iface=b)
        rx.fileno()
        stop = mp.Event()
        proc = mp.Process(target=_sender, args=(dp.prefix, a, stop, size))
        proc.start()
        bufs = np.zeros(256, np.int32)
        tx_row = dp.stats[dp.port_slot("phy", 0)]

        def run(sec: float) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < sec:
                k = rx.rx_burst(bufs)
                if k:
                    dp.free(bufs[:k].copy(), k)
            return time.perf_counter() - t0, time.process_time() - c0

        run(3.0)  # warm-up: compiled code loaded on both sides, ring drained
        rx.check_link(force=True)  # type: ignore[attr-defined]
        t0, r0, d0 = int(tx_row[TX_PACKETS]), int(rx.stats[RX_PACKETS]), total_drops(rx.stats)
        dt, cpu = run(seconds)
        rx.check_link(force=True)  # type: ignore[attr-defined]
        sent, got, lost = int(tx_row[TX_PACKETS]) - t0, int(rx.stats[RX_PACKETS]) - r0, total_drops(rx.stats) - d0
        stop.set()
        proc.join()
        rx.close()
    print(f"{size} B: phy tx {sent / dt / 1e6:.3f} Mpps, phy rx {got / dt / 1e6:.3f} Mpps, "
          f"rx drops {lost / dt / 1e6:.3f} Mpps, receiver CPU {cpu / dt:.0%}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 64, float(sys.argv[2]) if len(sys.argv) > 2 else 5.0)
