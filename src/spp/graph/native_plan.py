"""A :class:`~spp.graph.plan.WorkerPlan` as the arrays the compiled loop (:mod:`spp.graph.loop`) reads."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from spp.components.base import Component
from spp.graph import pyhook
from spp.graph.loop import (
    CT_CLASSIFIER,
    CT_MIRROR,
    CT_PY,
    F_CDROPS,
    F_VHOST,
    N_FLAGS,
    TI_ARG,
    TI_CBH,
    TI_COLS,
    TI_KIND,
    TI_MN,
    TI_MOFF,
    TI_SLOT,
    TI_TCI,
    TI_VOP,
    VH_COLS,
)
from spp.graph.plan import BURST, HOOK_ITERS, NATIVE_ITERS, Attachment, ComponentPlan, WorkerPlan
from spp.graph.pyhook import Hook
from spp.mirror.engine import MA_TXP, MI_COLS, PortMirror
from spp.mirror.registry import stats_table
from spp.ports.base import Callback, Port
from spp.ports.native import KIND_NONE, KIND_NULL, KIND_PCAP, KIND_PHY, KIND_PY, KIND_RING, KIND_TAP, KIND_VHOST
from spp.ports.null import NullPort
from spp.ports.phy import PH_COLS
from spp.ports.vhost_port import VH_REG0
from spp.runtime.stats import N_FIELDS, stat_add


def native_mirrors(cbs: tuple[Callback, ...]) -> list[PortMirror] | None:
    """The port mirrors behind callbacks ``cbs`` if the loop's mirror kernels can run them all,
    else None (the callbacks then run in Python, in order, once per burst).

    They can when every callback is a :class:`PortMirror` (shallow, deep or snaplen'd)
    without a Python filter or lock whose destination is an open ring, null, phy or tap
    port without callbacks.
    """
    out: list[PortMirror] = []
    for cb in cbs:
        pm = PortMirror.behind(cb)
        if pm is None:
            return None
        d = pm.destination
        if pm.filter is not None or pm.lock is not None or d.closed or d.has_callbacks:
            return None
        if d.native()[0] not in (KIND_NULL, KIND_RING, KIND_PHY, KIND_TAP, KIND_PCAP):
            return None
        out.append(pm)
    return out


def _port_rx(port: Port, io: np.ndarray, _dst: np.ndarray) -> Hook:
    """A Python driver's receive, for the loop (its ``_rx`` counts what it receives)."""
    return pyhook.guard(f"{port.id} receive", 0, lambda n: 0 if port.closed else port._rx(io, n))


def _port_tx(port: Port, io: np.ndarray, _dst: np.ndarray) -> Hook:
    """A Python driver's transmit (-1: the port is closed; the loop counts ``link_down``)."""
    return pyhook.guard(f"{port.id} transmit", -1, lambda n: -1 if port.closed else port._tx(io, n))


def _callbacks(port: Port, cbs: tuple[Callback, ...], io: np.ndarray, _dst: np.ndarray) -> Hook:
    """A port's callbacks in order, as ``rx_burst``/``tx_burst`` run them (each keeps a prefix)."""

    def run(n: int) -> int:
        for cb in cbs:
            if n == 0:
                break
            n = cb(port, io, n)
        return n

    return pyhook.guard(f"{port.id} callbacks", -2, run)


def _component(comp: Component, n_tx: int, io: np.ndarray, dst: np.ndarray) -> Hook:
    """A component's :meth:`~Component.process`: its output back in ``io``, tx indices in ``dst``."""

    def run(n: int) -> int:
        ids, d, m = comp.process(io, n, n_tx)
        if m > len(io):
            raise ValueError(f"component {comp.name} returned {m} frames for a burst of {n}; at most {len(io)}")
        io[:m] = ids[:m]
        if d is None:
            dst[:m] = 0
        else:
            dst[:m] = d[:m]
        return m

    return pyhook.guard(f"component {comp.name}", 0, run)


class NativePlan:
    """Arrays describing a plan to :func:`native_run_plan`.

    Tx rows are per (component, tx attachment), in plan order.  Classifier tables are
    copied into one array (the plan's snapshot: a table change is a new plan).  Drops
    the compiled loop counts for a component are gathered in ``cdrops`` and added to
    the component's own row by :meth:`settle` after every call.
    """

    def __init__(self, plan: WorkerPlan) -> None:
        comps = [c for c in plan.components if c.ready]
        n = len(comps)
        max_rx = max((len(c.rx) for c in comps), default=1) or 1
        self.comps = comps
        kernels = [c.component.kernel(len(c.tx)) for c in comps]
        self.ctype = np.array([kn.kind for kn in kernels], np.int64)
        # Hooks into Python (pyhook): one row of pyio/pydst each.  Rows are sized for a
        # component's output (it may send a frame to every tx port).
        max_tx = max((len(c.tx) for c in comps), default=1) or 1
        self._hook_fns: list[Callable[[np.ndarray, np.ndarray], Hook]] = []
        py_port: dict[tuple[int, bool], int] = {}
        self.n_rx = np.array([len(c.rx) for c in comps], np.int64)
        self.rx_kind = np.zeros((n, max_rx), np.int64)
        self.rx_arg = np.zeros((n, max_rx), np.int64)
        self.rx_slot = np.zeros((n, max_rx), np.int64)
        self.rx_tmpl = np.zeros((n, max_rx), np.int64)
        self.rx_ntmpl = np.zeros((n, max_rx), np.int64)
        self.rx_cur = np.zeros((n, max_rx), np.int64)
        self.rx_vlan = np.zeros((n, max_rx, 2), np.int64)
        self.tx_off = np.zeros(n + 1, np.int64)
        rows: list[np.ndarray] = []
        self.template_ports: list[tuple[NullPort, int, int]] = []
        width = 1
        tabs: list[np.ndarray] = []
        self.tab_off = np.zeros(n, np.int64)
        at = 0
        self.vhost_ports: list[Port] = []
        vrows: list[tuple[int, int, int, int, int]] = []
        vregs: list[np.ndarray] = []

        self.phy_ports: list[Port] = []
        self.tap_ports: list[Port] = []  # tap and pcap ports: their rows come from native_view()
        phy_dirs: list[list[bool]] = []

        def hook(make: Callable[[np.ndarray, np.ndarray], Hook]) -> int:
            self._hook_fns.append(make)
            return len(self._hook_fns) - 1

        def native(port: Port, rx: bool = False) -> tuple[int, int]:
            kind, arg = port.native()
            if kind == KIND_NONE:  # a driver in Python, called once per burst
                key = (id(port), rx)
                if key not in py_port:
                    py_port[key] = hook(functools.partial(_port_rx if rx else _port_tx, port))
                return KIND_PY, py_port[key]
            if kind in (KIND_TAP, KIND_PCAP):  # a row from native_view()
                if port not in self.tap_ports:
                    self.tap_ports.append(port)
                return kind, self.tap_ports.index(port)
            if kind == KIND_PHY:
                if port not in self.phy_ports:
                    self.phy_ports.append(port)
                    phy_dirs.append([False, False])
                p = self.phy_ports.index(port)
                phy_dirs[p][0 if rx else 1] = True
                return kind, p
            if kind != KIND_VHOST:
                return kind, arg
            if port not in self.vhost_ports:
                addr, size, state, regs = port.native_view()  # type: ignore[attr-defined]
                vrows.append((addr, size, state, 0, len(regs)))
                vregs.append(regs)
                self.vhost_ports.append(port)
            return kind, self.vhost_ports.index(port)

        for i, c in enumerate(comps):
            for j, a in enumerate(c.rx):
                self.rx_kind[i, j], self.rx_arg[i, j] = native(a.port, rx=True)
                self.rx_slot[i, j] = a.port.slot
                self.rx_vlan[i, j] = a.vlan.code, a.vlan.tci
                if isinstance(a.port, NullPort) and a.port.templates is not None:
                    self.rx_tmpl[i, j] = sum(len(r) for r in rows)
                    self.rx_ntmpl[i, j] = len(a.port.templates)
                    self.rx_cur[i, j] = a.port.cursor
                    rows.append(a.port.templates)
                    width = max(width, a.port.size)
                    self.template_ports.append((a.port, i, j))
            self.tx_off[i + 1] = self.tx_off[i] + len(c.tx)
            kn = kernels[i]
            if kn.kind == CT_CLASSIFIER:
                assert kn.table is not None
                self.tab_off[i] = at
                tabs.append(kn.table)
                at += len(kn.table)
            elif kn.kind == CT_MIRROR:
                self.tab_off[i] = kn.word
            elif kn.kind == CT_PY:
                self.tab_off[i] = hook(functools.partial(_component, c.component, len(c.tx)))
        txs = [a for c in comps for a in c.tx]
        tx_native = [native(a.port) for a in txs]
        # The ports' mirrors, read once: a mirror agent thread may attach or detach one at any
        # moment (the callback generation then changes and the worker plans again).
        # Callbacks the mirror kernels cannot run (all of a direction's, to keep their order) run
        # in Python through a hook: rx_cbh / tx_info[TI_CBH] hold its row + 1.
        self.port_mirrors: dict[int, tuple[list[PortMirror], list[PortMirror]]] = {}
        cb_hooks: dict[int, tuple[int, int]] = {}
        for a in (*(a for c in comps for a in c.rx), *txs):
            if id(a.port) in self.port_mirrors:
                continue
            hooks = [0, 0]
            found: list[list[PortMirror]] = []
            for d, cbs in enumerate((a.port.rx_callbacks, a.port.tx_callbacks)):
                ms = native_mirrors(cbs)
                if ms is None:
                    hooks[d] = 1 + hook(functools.partial(_callbacks, a.port, cbs))
                    ms = []
                found.append(ms)
            self.port_mirrors[id(a.port)] = (found[0], found[1])
            cb_hooks[id(a.port)] = (hooks[0], hooks[1])
        self.rx_cbh = np.zeros((n, max_rx), np.int64)
        for i, c in enumerate(comps):
            for j, a in enumerate(c.rx):
                self.rx_cbh[i, j] = cb_hooks[id(a.port)][0]
        # port mirrors' phy/tap destinations get rows too (transmit direction)
        dev_dest: dict[int, int] = {}
        for a in (*(a for c in comps for a in c.rx), *txs):
            for pm in (*self.port_mirrors[id(a.port)][0], *self.port_mirrors[id(a.port)][1]):
                if pm.destination.native()[0] in (KIND_PHY, KIND_TAP, KIND_PCAP):
                    dev_dest[id(pm)] = native(pm.destination)[1]
        self.tx_kind = np.array([k for k, _ in tx_native], np.int64)
        self.tx_arg = np.array([a for _, a in tx_native], np.int64)
        # vhost rows, then their region tables (padded to VH_COLS columns), then the phy
        # ports' rows (each port's rings by address, opened for the directions the plan uses)
        nreg = sum(len(r) for r in vregs)
        phy_at = len(vrows) + nreg
        tap_at = phy_at + len(self.phy_ports)
        self.vh = np.zeros((max(tap_at + len(self.tap_ports), 1), VH_COLS), np.int64)
        for k, port in enumerate(self.phy_ports):
            self.vh[phy_at + k, :PH_COLS] = port.native_view(*phy_dirs[k])  # type: ignore[attr-defined]
        for k, port in enumerate(self.tap_ports):
            row = port.native_view()  # type: ignore[attr-defined]
            self.vh[tap_at + k, : len(row)] = row
        for arr, kinds in ((self.rx_arg, self.rx_kind), (self.tx_arg, self.tx_kind)):
            arr[kinds == KIND_PHY] += phy_at
            arr[(kinds == KIND_TAP) | (kinds == KIND_PCAP)] += tap_at
        reg_at = len(vrows)
        for k, row in enumerate(vrows):
            self.vh[k] = row
            self.vh[k, VH_REG0] = reg_at
            regs = vregs[k]
            self.vh[reg_at : reg_at + len(regs), : regs.shape[1]] = regs
            reg_at += len(regs)
        self.tx_slot = np.array([a.port.slot for a in txs], np.int64)
        self.tmpl = np.zeros((max(sum(len(r) for r in rows), 1), width), np.uint8)
        k = 0
        for r in rows:
            self.tmpl[k : k + len(r), : r.shape[1]] = r
            k += len(r)
        self.tabs = np.concatenate(tabs) if tabs else np.zeros(1, np.int64)
        self.cdrops = np.zeros((n, N_FIELDS), np.int64)
        self._mirrors(comps, txs, dev_dest, phy_at, tap_at)
        for t, a in enumerate(txs):
            self.tx_info[t, TI_CBH] = cb_hooks[id(a.port)][1]
        self.tx_info[:, TI_KIND], self.tx_info[:, TI_ARG], self.tx_info[:, TI_SLOT] = \
            self.tx_kind, self.tx_arg, self.tx_slot
        self.txbuf = np.zeros((max(len(txs), 1), BURST * 2), np.int32)
        self.txcnt = np.zeros(max(len(txs), 1), np.int64)
        nh = max(len(self._hook_fns), 1)
        width = BURST * (2 + max_tx)
        self.pyio = np.zeros((nh, width), np.int32)
        self.pydst = np.zeros((nh, width), np.int64)
        self.pyh = np.full(nh, -1, np.int64)
        for k, make in enumerate(self._hook_fns):
            self.pyh[k] = pyhook.register(make(self.pyio[k], self.pydst[k]))
        #: Passes per call of the loop (fewer when Python hooks make each pass slow).
        self.iters = HOOK_ITERS if self._hook_fns else NATIVE_ITERS

    def close(self) -> None:
        """Release the plan's Python hooks (the worker no longer runs it)."""
        for h in self.pyh:
            if h >= 0:
                pyhook.release(int(h))
        self.pyh[:] = -1

    def _mirrors(self, comps: list[ComponentPlan], txs: list[Attachment], dev_dest: dict[int, int], phy_at: int,
                 tap_at: int) -> None:
        """Port mirror arrays: per rx row and tx row the mirrors to run, per mirror its parameters."""
        from spp.mirror.engine import STAT_COLS
        from spp.mirror.filters import N_PARAMS

        n = len(comps)
        max_rx = self.rx_kind.shape[1]
        self.rx_moff = np.zeros((n, max_rx), np.int64)
        self.rx_mn = np.zeros((n, max_rx), np.int64)
        self.tx_info = np.zeros((len(txs), TI_COLS), np.int64)
        index: dict[int, int] = {}
        self.mirrors: list[PortMirror] = []
        flat: list[int] = []

        def add(pms: list[PortMirror] | None) -> tuple[int, int]:
            assert pms is not None
            first = len(flat)
            for pm in pms:
                if id(pm) not in index:
                    index[id(pm)] = len(self.mirrors)
                    self.mirrors.append(pm)
                flat.append(index[id(pm)])
            return first, len(pms)

        for i, c in enumerate(comps):
            for j, a in enumerate(c.rx):
                self.rx_moff[i, j], self.rx_mn[i, j] = add(self.port_mirrors[id(a.port)][0])
        for t, a in enumerate(txs):
            self.tx_info[t, TI_MOFF], self.tx_info[t, TI_MN] = add(self.port_mirrors[id(a.port)][1])
            self.tx_info[t, TI_VOP], self.tx_info[t, TI_TCI] = a.vlan.code, a.vlan.tci
        m = max(len(self.mirrors), 1)
        self.mlist = np.array(flat or [0], np.int64)
        self.minfo = np.zeros((m, MI_COLS), np.int64)
        self.mparams = np.zeros((m, N_PARAMS), np.int64)
        self.mvlan = np.zeros((m, 4096), np.uint8)
        self.macc = np.zeros((m, STAT_COLS), np.int64)
        self.mtab = np.zeros((1, STAT_COLS), np.int64)
        self.local_mirrors: list[int] = []  # mirrors whose statistics :meth:`settle` adds
        for k, pm in enumerate(self.mirrors):
            d = pm.destination
            kind = d.native()[0]
            if not k:
                self.mtab = stats_table(pm.dp)
            srow = _row_of(self.mtab, pm.stats)
            if srow < 0:
                self.local_mirrors.append(k)
            if kind == KIND_RING:
                darg = d.id.index
            elif kind in (KIND_PHY, KIND_TAP, KIND_PCAP):  # the destination's row in ``vh``
                darg = dev_dest[id(pm)] + (phy_at if kind == KIND_PHY else tap_at)
            else:
                darg = 0
            self.minfo[k] = (int(pm.deep), pm.snaplen, pm.source.slot, kind, darg, d.slot, srow)
            self.mparams[k] = pm._params
            self.mvlan[k] = pm._vlanmap
        self.flags = np.zeros(N_FLAGS, np.int64)

    def settle(self) -> None:
        """After a call: move component drops to the components, template cursors to the ports,
        mirror statistics to the rows of mirrors the loop could not reach (private rows).

        Costs next to nothing when there is nothing to do: this runs after every call
        and a few microseconds here are a few percent of a call's forwarding.
        """
        acc = self.macc
        for k in self.local_mirrors:
            if acc[k, :MA_TXP].any():
                row = self.mirrors[k].stats
                for col in np.flatnonzero(acc[k, :MA_TXP]):  # the rest is the destination's, already added
                    stat_add(row, int(col), int(acc[k, col]))
                acc[k, :MA_TXP] = 0
        for port in self.phy_ports:
            port.after_native()  # type: ignore[attr-defined]
        if self.flags[F_VHOST]:
            self.flags[F_VHOST] = 0
            for port in self.vhost_ports:
                port.after_native()  # type: ignore[attr-defined]
        if self.flags[F_CDROPS]:
            self.flags[F_CDROPS] = 0
            cd = self.cdrops
            for c in np.flatnonzero(cd.any(axis=1)):
                row = self.comps[int(c)].component.drops
                row += cd[c]
                cd[c] = 0
        for port, i, j in self.template_ports:
            port.cursor = int(self.rx_cur[i, j])


def _row_of(table: np.ndarray, row: np.ndarray) -> int:
    """Index of ``row`` in the 2-D ``table`` if it is one of its rows (same memory), else -1."""
    if table.ndim != 2 or row.ndim != 1 or row.shape[0] != table.shape[1] or row.dtype != table.dtype:
        return -1
    base = table.__array_interface__["data"][0]
    addr = row.__array_interface__["data"][0]
    step = table.strides[0]
    if row.strides[0] != table.strides[1] or not base <= addr < base + step * table.shape[0] or (addr - base) % step:
        return -1
    return int((addr - base) // step)
