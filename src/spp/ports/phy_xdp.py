"""``phy:N`` on AF_XDP: :class:`XdpPhyPort`, the AF_PACKET port's link handling with an XDP socket.

The interface lookups, link checks, reopen after a flap, quiescent retirement of old
rings and the compiled worker's row are :class:`~spp.ports.phy.PhyPort`'s; this class
swaps the sockets: one AF_XDP socket (:class:`spp.ports.af_xdp.Xsk`, rx and tx rings)
on queue ``N``'s ``queue`` serves both directions, opened when the port is opened (so
an interface AF_XDP cannot serve is known at once and ``auto`` can fall back).  Unlike
AF_PACKET's fanout, the socket takes every frame of its queue from the moment it opens.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from spp.ports.af_xdp import Xsk, xdp_rx, xdp_rx_ready, xdp_tx
from spp.ports.base import PortId
from spp.ports.phy import DRV_AF_XDP, PH_COLS, PH_DRV, PH_RX, PH_TX, PhyPort, _mtu
from spp.runtime.dataplane import Dataplane


class _Half:
    """One direction's handle on the shared socket (the socket closes with the last handle)."""

    def __init__(self, xsk: Xsk, refs: list[int]) -> None:
        self.xsk = xsk
        self.refs = refs
        refs[0] += 1
        self.state = xsk.state

    def kernel_drops(self) -> int:
        return self.xsk.kernel_drops()

    def close(self) -> None:
        self.refs[0] -= 1
        if self.refs[0] == 0:
            self.xsk.close()


class XdpPhyPort(PhyPort):
    """A Linux interface through an AF_XDP socket; see the module docstring."""

    def __init__(self, dp: Dataplane, pid: PortId, iface: str | None = None, fanout: bool = True) -> None:
        super().__init__(dp, pid, iface=iface, fanout=fanout)
        self._xlock = threading.Lock()
        try:
            with self._mgmt_lock, self._rx_lock, self._tx_lock:
                self._use_rx = self._use_tx = True
                self._open_rx()
                self._open_tx()
        except BaseException:
            self._ctl.close()
            self._teardown("stopped")
            self._reap()
            self.closed = True
            raise

    def _shared(self) -> tuple[Xsk, list[int]]:
        other = self._rxs if self._rxs is not None else self._txs
        if isinstance(other, _Half):
            return other.xsk, other.refs
        return Xsk(self.iface, self.ifindex, self.id.queue, _mtu(self.iface)), [0]

    def _open_rx(self) -> None:
        xsk, refs = self._shared()
        self._rxs = _Half(xsk, refs)  # type: ignore[assignment]
        self._callbacks_changed()

    def _open_tx(self) -> None:
        xsk, refs = self._shared()
        h = _Half(xsk, refs)
        h.state[4] = int(self.admin_up)  # TXS_UP
        self._txs = h  # type: ignore[assignment]
        self._callbacks_changed()

    def _reap(self) -> None:
        from spp.runtime import quiesce

        if not self._retired or not quiesce.synchronize():
            return
        with self._mgmt_lock:
            retired, self._retired = self._retired, []
        for rx, tx, reason in retired:
            if isinstance(rx, _Half):
                lost = rx.xsk.pending()
                if lost:
                    self.count_drop(reason, lost)
                try:
                    drops = rx.kernel_drops()
                except OSError:
                    drops = 0
                if drops:
                    self.count_drop("ring_full", drops)
                rx.close()
            if isinstance(tx, _Half):
                tx.close()

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        if time.monotonic() >= self._next_check:
            self.check_link()
        with self._rx_lock:
            rx = self._rxs
            if not isinstance(rx, _Half) or not xdp_rx_ready(rx.state):
                return 0
            dp = self.dp
            return int(xdp_rx(rx.state, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                              dp.stats, self.slot, bufs, n))

    def _tx(self, bufs: np.ndarray, n: int) -> int:
        if time.monotonic() >= self._next_check:
            self.check_link()
        with self._tx_lock:
            tx = self._txs
            if not isinstance(tx, _Half):
                return self._drop_link_down(bufs, n)
            if len(self._scratch) < n:
                self._scratch = np.empty(max(n, 2 * len(self._scratch)), np.int32)
            dp = self.dp
            k = int(xdp_tx(tx.state, dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.header, dp.meta, dp.data,
                           dp.stats, self.slot, bufs, n, self._scratch))
            if k < 0:
                return self._drop_link_down(bufs, n)
        self.after_native()
        return k

    def native_view(self, rx: bool, tx: bool) -> np.ndarray:
        """The port's row: ``PH_RX``/``PH_TX`` the state array's address (0: no socket), ``PH_DRV`` AF_XDP."""
        row = np.zeros(PH_COLS, np.int64)
        row[PH_DRV] = DRV_AF_XDP
        with self._mgmt_lock, self._rx_lock, self._tx_lock:
            if rx and isinstance(self._rxs, _Half):
                row[PH_RX] = self._rxs.state.__array_interface__["data"][0]
            if tx and isinstance(self._txs, _Half):
                row[PH_TX] = self._txs.state.__array_interface__["data"][0]
        return row

    def fileno(self) -> int | None:
        rx = self._rxs
        return rx.xsk.fd if isinstance(rx, _Half) else None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        rx = self._rxs
        d.update({"driver": "af_xdp", "xdp_mode": rx.xsk.mode if isinstance(rx, _Half) else None,
                  "fanout_group": None, "rx_ring": "AF_XDP rx/fill 2048, UMEM 4096 x 4 KiB (copied into pool buffers)",
                  "tx_ring": "AF_XDP tx/completion 2048"})
        return d
