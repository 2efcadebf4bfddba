"""``phy:N`` on AF_XDP: :class:`XdpPhyPort`, the AF_PACKET port's link handling with an XDP socket.

The interface lookups, link checks, reopen after a flap, quiescent retirement of old
rings and the compiled worker's row are :class:`~spp.ports.phy.PhyPort`'s; this class
swaps the sockets: one AF_XDP socket (:class:`spp.ports.af_xdp.Xsk`, rx and tx rings)
on queue ``N``'s ``queue`` serves both directions once the port receives.  Unlike
AF_PACKET's fanout, the socket takes every frame of its queue from the moment it opens.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np

from spp.ports.af_xdp import N_FRAMES, N_RX, N_TX, XdpError, Xsk, claim_interface, xdp_rx, xdp_rx_ready, xdp_tx
from spp.ports.base import PortId
from spp.ports.phy import DRV_AF_XDP, PH_COLS, PH_DRV, PH_RX, PH_TX, PhyPort, _mtu
from spp.runtime.dataplane import Dataplane

log = logging.getLogger(__name__)


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
    """A Linux interface through an AF_XDP socket; see the module docstring.

    The socket opens with the first receive (like AF_PACKET's rx socket: a process that
    only transmits on ``phy:N`` must not take the interface's frames); until then
    transmit uses AF_PACKET's tx ring, which the socket then replaces.  ``forced``
    (``driver=af_xdp``): the socket is tried once when the port opens, so a refusal is
    an error at once; otherwise (``auto``) a refusal later falls back to AF_PACKET for
    good, saying why.
    """

    def __init__(self, dp: Dataplane, pid: PortId, iface: str | None = None, fanout: bool = True,
                 forced: bool = False) -> None:
        super().__init__(dp, pid, iface=iface, fanout=fanout)
        self.forced = forced
        self.fallback = ""
        try:
            claim_interface(self.iface, self.ifindex)
            if forced:
                Xsk(self.iface, self.ifindex, self.id.queue, _mtu(self.iface)).close()
        except BaseException:
            self.close()
            raise

    def _open_rx(self) -> None:
        if self.fallback:
            super()._open_rx()
            return
        try:
            xsk = Xsk(self.iface, self.ifindex, self.id.queue, _mtu(self.iface))
        except XdpError as e:
            if self.forced:
                raise
            self.fallback = f"AF_XDP not possible: {e}"
            self.driver_note = self.fallback
            log.warning("%s: driver af_packet (%s)", self.id, self.fallback)
            super()._open_rx()
            return
        refs = [0]
        self._rxs = _Half(xsk, refs)  # type: ignore[assignment]
        old = self._txs
        if old is not None and not isinstance(old, _Half):  # AF_PACKET tx until now: the socket takes over
            self._retired.append((None, old, "stopped"))
        if old is not None or self._use_tx:
            h = _Half(xsk, refs)
            h.state[4] = int(self.admin_up)  # TXS_UP
            self._txs = h  # type: ignore[assignment]
        self._callbacks_changed()

    def _open_tx(self) -> None:
        rx = self._rxs
        if isinstance(rx, _Half):
            h = _Half(rx.xsk, rx.refs)
            h.state[4] = int(self.admin_up)  # TXS_UP
            self._txs = h  # type: ignore[assignment]
            self._callbacks_changed()
        else:
            super()._open_tx()

    def _reap(self) -> None:
        from spp.runtime import quiesce

        if not any(isinstance(h, _Half) for r in self._retired for h in r[:2]):
            super()._reap()
            return
        if not quiesce.synchronize():
            return
        with self._mgmt_lock:
            retired, self._retired = self._retired, []
        rest = []
        for rx0, tx0, reason in retired:
            rx, tx = rx0, tx0
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
                rx = None
            if isinstance(tx, _Half):
                tx.close()
                tx = None
            if rx is not None or tx is not None:
                rest.append((rx, tx, reason))
        if rest:
            with self._mgmt_lock:
                self._retired.extend(rest)
            super()._reap()

    def _rx(self, bufs: np.ndarray, n: int) -> int:
        rx = self._rxs
        if rx is None or not isinstance(rx, _Half):
            if rx is not None or self.fallback:
                return super()._rx(bufs, n)
            if time.monotonic() >= self._next_check:
                self.check_link()
            with self._mgmt_lock, self._rx_lock, self._tx_lock:
                if self._rxs is None and not self.closed and self.link != "gone":
                    self._use_rx = True
                    try:
                        self._open_rx()
                    except OSError:
                        self._next_check = 0.0
                        return 0
            self._reap()
            rx = self._rxs
            if not isinstance(rx, _Half):
                return super()._rx(bufs, n) if rx is not None else 0
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
        if self._txs is None and isinstance(self._rxs, _Half):
            with self._tx_lock:
                if self._txs is None and not self.closed and self.admin_up:
                    self._use_tx = True
                    self._open_tx()
        if not isinstance(self._txs, _Half):
            return super()._tx(bufs, n)
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
        """AF_PACKET's row until the socket is open; then ``PH_RX``/``PH_TX`` are the state array's
        address (0: no socket) and ``PH_DRV`` is AF_XDP."""
        if rx and self._rxs is None and not self.fallback:
            with self._mgmt_lock, self._rx_lock, self._tx_lock:
                if self._rxs is None and not self.closed and self.link != "gone":
                    self._use_rx = True
                    try:
                        self._open_rx()
                    except OSError:
                        self._next_check = 0.0
        if not isinstance(self._rxs, _Half):
            return super().native_view(rx, tx)
        row = np.zeros(PH_COLS, np.int64)
        row[PH_DRV] = DRV_AF_XDP
        with self._mgmt_lock, self._rx_lock, self._tx_lock:
            if tx and self._txs is None and not self.closed and self.admin_up:
                self._use_tx = True
                self._open_tx()
            if rx and isinstance(self._rxs, _Half):
                row[PH_RX] = self._rxs.state.__array_interface__["data"][0]
            if tx and isinstance(self._txs, _Half):
                row[PH_TX] = self._txs.state.__array_interface__["data"][0]
        return row

    def fileno(self) -> int | None:
        if self._rxs is None and not self.fallback:
            with self._mgmt_lock, self._rx_lock, self._tx_lock:
                if self._rxs is None and not self.closed and self.link != "gone":
                    self._use_rx = True
                    with contextlib.suppress(OSError):
                        self._open_rx()
        rx = self._rxs
        if isinstance(rx, _Half):
            return rx.xsk.fd
        return super().fileno() if self.fallback else None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        rx = self._rxs
        if isinstance(rx, _Half):
            d.update({"driver": "af_xdp", "xdp_mode": rx.xsk.mode, "fanout_group": None,
                      "rx_ring": f"AF_XDP rx/fill {N_RX}, UMEM {N_FRAMES} x 4 KiB (copied into pool buffers)",
                      "tx_ring": f"AF_XDP tx/completion {N_TX}"})
        elif not self.fallback:
            d["driver"] = "af_xdp (opens with the first receive; af_packet tx until then)"
        return d
