"""Workers: one thread per core id, running the components assigned to it.

A worker follows a :class:`WorkerPlan`, an immutable description of its components
and their port attachments.  The control side builds a new plan and publishes it
(:meth:`Worker.publish`); the worker adopts it between bursts, so it never sees half
a change (validate, then swap).  Frames buffered for transmit survive a swap; those
buffered for a port that the new plan no longer uses are sent to it first.

Transmit is buffered per (component, tx port) and drains at ``BURST`` frames, when a
poll received nothing, or ``DRAIN_NS`` after the first buffered frame, whichever is
first.  Frames the port refuses are freed and counted on that port
(``ring_full``/``tx_full``).

When every component of a plan is a forward/merge, a classifier or a mirror over ports
with a compiled driver (null, ring, vhost, phy, tap), with VLAN operations or not, and
every callback is a port mirror the compiled loop can run (no Python filter or lock,
ring/null destination), the worker runs :func:`native_run_plan`, many bursts per call,
instead of the Python loop; it counts exactly what the Python loop would (port
counters, component drops).  :attr:`Worker.path` says which loop runs and, for the
Python one, why.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from spp.components.base import Component
from spp.components.vlan import NO_VLAN, OP_NONE, VlanOp, apply_vlan, unshare
from spp.mirror.engine import PortMirror
from spp.mirror.registry import stats_table
from spp.ports.base import Callback, Port
from spp.ports.native import KIND_NULL, KIND_PHY, KIND_RING, KIND_TAP, KIND_VHOST
from spp.ports.null import NullPort
from spp.ports.phy import PH_COLS
from spp.ports.tap import TP_COLS
from spp.runtime import pause, quiesce
from spp.runtime.dataplane import Dataplane
from spp.runtime.native_loop import (
    CT_CLASSIFIER,
    CT_FORWARD,
    CT_MIRROR,
    F_CDROPS,
    F_VHOST,
    MA_TXP,
    MI_COLS,
    N_FLAGS,
    TI_COLS,
    TI_MN,
    TI_MOFF,
    TI_TCI,
    TI_VOP,
    VH_COLS,
    VH_REG0,
    native_run_plan,
)
from spp.runtime.stats import N_FIELDS, REASON, stat_add

log = logging.getLogger(__name__)

BURST = 32
DRAIN_NS = 100_000
NATIVE_ITERS = 256
Clock = Callable[[], int]


@dataclass(frozen=True)
class Attachment:
    """A port attached to a component in one direction, with its VLAN operation."""

    port: Port
    vlan: VlanOp = NO_VLAN


@dataclass(frozen=True)
class ComponentPlan:
    component: Component
    rx: tuple[Attachment, ...] = ()
    tx: tuple[Attachment, ...] = ()

    @property
    def ready(self) -> bool:
        return self.component.ready(len(self.rx), len(self.tx))


@dataclass(frozen=True)
class WorkerPlan:
    components: tuple[ComponentPlan, ...] = ()
    generation: int = 0


@dataclass
class _TxBuffer:
    port: Port
    vlan: VlanOp
    ids: np.ndarray = field(default_factory=lambda: np.empty(BURST * 8, np.int32))
    count: int = 0
    since: int = 0


class CallbacksChanged(RuntimeError):
    """A port's callbacks changed while a compiled plan was being built from them."""


def native_mirrors(cbs: tuple[Callback, ...]) -> list[PortMirror] | None:
    """The port mirrors behind callbacks ``cbs`` if the compiled loop can run them all, else None.

    It can when every callback is a :class:`PortMirror` (shallow, deep or snaplen'd)
    without a Python filter or lock whose destination is an open ring, null, phy or tap
    port without callbacks.
    """
    out: list[PortMirror] = []
    for cb in cbs:
        pm = getattr(cb, "__self__", None)
        if not isinstance(pm, PortMirror) or getattr(cb, "__func__", None) is not PortMirror._callback:
            return None
        d = pm.destination
        if pm.filter is not None or pm.lock is not None or d.closed or d.has_callbacks:
            return None
        if d.native()[0] not in (KIND_NULL, KIND_RING, KIND_PHY, KIND_TAP):
            return None
        out.append(pm)
    return out


class _NativePlan:
    """Arrays describing a plan to :func:`native_run_plan`.

    Tx rows are per (component, tx attachment), in plan order.  Classifier tables are
    copied into one array (the plan's snapshot: a table change is a new plan).  Drops
    the compiled loop counts for a component are gathered in ``cdrops`` and added to
    the component's own row by :meth:`settle` after every call.
    """

    def __init__(self, plan: WorkerPlan) -> None:
        from spp.components.classifier import Classifier
        from spp.components.mirror import Mirror

        comps = [c for c in plan.components if c.ready]
        n = len(comps)
        max_rx = max((len(c.rx) for c in comps), default=1) or 1
        self.comps = comps
        self.ctype = np.array([CT_CLASSIFIER if isinstance(c.component, Classifier)
                               else CT_MIRROR if isinstance(c.component, Mirror) else CT_FORWARD
                               for c in comps], np.int64)
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
        self.tap_ports: list[Port] = []
        phy_dirs: list[list[bool]] = []

        def native(port: Port, rx: bool = False) -> tuple[int, int]:
            kind, arg = port.native()
            if kind == KIND_TAP:
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
            comp = c.component
            if isinstance(comp, Classifier):
                self.tab_off[i] = at
                tabs.append(comp.table.packed)
                at += len(comp.table.packed)
            elif isinstance(comp, Mirror):  # its copy mode, read live (a mode change is not a plan change)
                self.tab_off[i] = comp.mode_word.__array_interface__["data"][0]
        txs = [a for c in comps for a in c.tx]
        tx_native = [native(a.port) for a in txs]
        # The ports' mirrors, read once: a mirror agent thread may attach or detach one at any
        # moment (the callback generation then changes and the worker plans again).
        self.port_mirrors: dict[int, tuple[list[PortMirror], list[PortMirror]]] = {}
        for a in (*(a for c in comps for a in c.rx), *txs):
            rx_m, tx_m = native_mirrors(a.port._rx_cbs), native_mirrors(a.port._tx_cbs)
            if rx_m is None or tx_m is None:
                raise CallbacksChanged(f"{a.port.id} got a mirror the compiled loop cannot run while planning")
            self.port_mirrors[id(a.port)] = (rx_m, tx_m)
        # port mirrors' phy/tap destinations get rows too (transmit direction)
        dev_dest: dict[int, int] = {}
        for a in (*(a for c in comps for a in c.rx), *txs):
            for pm in (*self.port_mirrors[id(a.port)][0], *self.port_mirrors[id(a.port)][1]):
                if pm.destination.native()[0] in (KIND_PHY, KIND_TAP):
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
            self.vh[tap_at + k, :TP_COLS] = port.native_view()  # type: ignore[attr-defined]
        for arr, kinds in ((self.rx_arg, self.rx_kind), (self.tx_arg, self.tx_kind)):
            arr[kinds == KIND_PHY] += phy_at
            arr[kinds == KIND_TAP] += tap_at
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
        self.txbuf = np.zeros((max(len(txs), 1), BURST * 2), np.int32)
        self.txcnt = np.zeros(max(len(txs), 1), np.int64)

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
            elif kind in (KIND_PHY, KIND_TAP):  # the destination's row in ``vh``
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

    @staticmethod
    def eligible(plan: WorkerPlan) -> bool:
        return _NativePlan.why_not(plan) is None

    @staticmethod
    def why_not(plan: WorkerPlan) -> str | None:
        """Why the compiled loop cannot run ``plan`` (None: it can)."""
        from spp.components.classifier import Classifier
        from spp.components.mirror import Mirror

        for c in plan.components:
            if not c.ready:
                continue
            comp = c.component
            if not (comp.native_mode or type(comp) in (Classifier, Mirror)):
                return f"component {comp.name} ({type(comp).__name__.lower()}) has no compiled kernel"
            if comp.native_mode and len(c.tx) != 1:
                return f"component {comp.name} has {len(c.tx)} tx ports (the compiled forward takes one)"
            for a in (*c.rx, *c.tx):
                if a.port.native()[0] == 0:
                    return f"port {a.port.id} has no compiled driver"
                if native_mirrors(a.port._rx_cbs) is None or native_mirrors(a.port._tx_cbs) is None:
                    return f"port {a.port.id} has a callback the compiled loop cannot run (a mirror with a " \
                           f"Python filter or lock, or to a vhost/pcap port)"
        return None


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


def warm_up_native(dp: Dataplane) -> None:
    """Compile (or load from the cache) the compiled worker loop now.

    A worker busy compiling cannot adopt a new plan, and a cold compile of the loop
    takes tens of seconds, so processes call this once before taking commands:
    otherwise the first command after a fresh install would wait for the compiler.
    """
    global _native_warm
    if _native_warm:
        return
    w = Worker(dp, 0, pin=False)
    w._native = _NativePlan(WorkerPlan())
    w._run_native()
    _native_warm = True


_native_warm = False


def _pin(core: int) -> None:
    try:
        if core in os.sched_getaffinity(0):
            os.sched_setaffinity(0, {core})  # 0: this thread only
            return
    except OSError:
        pass
    log.warning("core %d is not available on this host (cpus %s): worker not pinned",
                core, sorted(os.sched_getaffinity(0)))


class Worker:
    """A worker thread for one core id.  ``start``, ``publish`` plans, ``stop``."""

    def __init__(self, dp: Dataplane, core: int, *, clock: Clock = time.perf_counter_ns,
                 pin: bool = True, idle_sleep: float = 0.0002) -> None:
        self.dp = dp
        self.core = core
        self.clock = clock
        self.pin = pin
        self.idle_sleep = idle_sleep
        self._plan = WorkerPlan()
        self._adopted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"spp-worker-{core}", daemon=True)
        self._txbufs: dict[tuple[int, int], _TxBuffer] = {}
        self._scratch = np.empty(BURST, np.int32)
        self._one = np.empty(1, np.int32)
        self._native: _NativePlan | None = None
        self._why_python: str | None = None
        self.error: BaseException | None = None
        self.loops = 0

    # -- control side ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def plan(self) -> WorkerPlan:
        return self._plan

    @property
    def path(self) -> tuple[str, str | None]:
        """``("native", None)`` while the compiled loop runs the plan, else ``("python", why)``."""
        if self._native is not None or not self._plan.components:
            return ("native", None)
        return ("python", self._why_python or "the plan changed; not adopted yet")

    def publish(self, plan: WorkerPlan, *, wait: bool = True, timeout: float = 5.0) -> None:
        """Hand ``plan`` to the worker; with ``wait``, return once it runs it."""
        self._plan = plan
        if wait and self._thread.is_alive():
            deadline = time.monotonic() + timeout
            while self._adopted != plan.generation and self._thread.is_alive():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker on core {self.core} did not adopt the new plan")
                time.sleep(0.0005)
        elif not self._thread.is_alive():
            self._adopt(plan)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after sending every buffered frame."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._flush_all(force=True)

    # -- worker side ----------------------------------------------------------

    def _adopt(self, plan: WorkerPlan) -> None:
        keep: dict[tuple[int, int], _TxBuffer] = {}
        for cp in plan.components:
            for a in cp.tx:
                key = (id(cp.component), id(a.port))
                buf = self._txbufs.pop(key, None)
                if buf is None:
                    buf = _TxBuffer(a.port, a.vlan)
                buf.vlan = a.vlan
                keep[key] = buf
        for buf in self._txbufs.values():  # attachments that went away: send what they hold
            self._flush(buf)
        self._txbufs = keep
        why = _NativePlan.why_not(plan) if plan.components else None
        try:
            self._native = _NativePlan(plan) if plan.components and why is None else None
        except CallbacksChanged as e:  # the Python path for now; the callback change re-plans at once
            self._native, why = None, str(e)
        except Exception as e:  # never let planning stop the worker: run the plan in Python, and say why
            log.exception("worker on core %d: cannot build the compiled plan", self.core)
            self._native, why = None, f"the compiled plan could not be built: {e}"
        self._why_python = why
        self._adopted = plan.generation

    def _run(self) -> None:
        if self.pin:
            _pin(self.core)
        quiesce.register(self)
        checkpoint = pause.Checkpoint(self.dp)
        flush = lambda: self._flush_all(force=True)  # noqa: E731
        current: WorkerPlan | None = None
        cb_gen = -1
        idle = 0
        try:
            while not self._stop.is_set():
                if checkpoint.requested():  # the primary stops the world (reclaiming a dead process's buffers)
                    checkpoint.hold(flush)
                plan = self._plan
                if plan is not current or Port.callback_generation != cb_gen:  # a callback change too
                    cb_gen = Port.callback_generation  # (e.g. a mirror) may switch the fast path on or off
                    self._adopt(plan)
                    current = plan
                self.loops += 1
                if self._native is not None:
                    got = self._run_native()
                else:
                    got = self._run_python(plan)
                if got:
                    idle = 0
                else:
                    idle += 1
                    if idle > 8:
                        time.sleep(self.idle_sleep)
        except BaseException as e:  # report, never die silently
            self.error = e
            log.exception("worker on core %d failed", self.core)
        finally:
            checkpoint.close(flush)
            quiesce.unregister(self)

    def _run_native(self) -> int:
        npn = self._native
        assert npn is not None
        dp = self.dp
        got = int(native_run_plan(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header,
                                  dp.ring_ctrl, dp.ring_slots, dp.stats, npn.ctype, npn.n_rx, npn.rx_kind,
                                  npn.rx_arg, npn.rx_slot, npn.rx_tmpl, npn.rx_ntmpl, npn.rx_cur, npn.tmpl,
                                  npn.tx_off, npn.tx_kind, npn.tx_arg, npn.tx_slot, npn.tabs, npn.tab_off,
                                  npn.cdrops, npn.txbuf, npn.txcnt, NATIVE_ITERS, BURST, REASON["ring_full"],
                                  REASON["tx_full"], npn.rx_moff, npn.rx_mn, npn.tx_info, npn.rx_vlan, npn.mlist,
                                  npn.minfo, npn.mparams, npn.mvlan, npn.macc, npn.mtab, npn.flags, npn.vh))
        npn.settle()
        return got

    def _run_python(self, plan: WorkerPlan) -> int:
        total = 0
        dp = self.dp
        bufs = self._scratch
        for cp in plan.components:
            if not cp.ready:
                continue
            comp = cp.component
            for a in cp.rx:
                k = a.port.rx_burst(bufs, BURST)
                if k == 0:
                    continue
                total += k
                if a.vlan.code != OP_NONE:
                    k = self._private(a.port, bufs, k)
                    bad = int(apply_vlan(dp.data, dp.meta, bufs, k, a.vlan.code, a.vlan.tci))
                    if bad:
                        a.port.count_error(bad)
                ids, dst, m = comp.process(bufs, k, len(cp.tx))
                if m:
                    self._enqueue(cp, ids, dst, m)
        self._flush_all(force=total == 0)
        return total

    def _enqueue(self, cp: ComponentPlan, ids: np.ndarray, dst: np.ndarray | None, m: int) -> None:
        key0 = id(cp.component)
        if dst is None:
            self._append(self._txbufs[(key0, id(cp.tx[0].port))], ids[:m])
            return
        d = dst[:m]
        for j, a in enumerate(cp.tx):
            sel = ids[:m][d == j]
            if len(sel):
                self._append(self._txbufs[(key0, id(a.port))], sel)

    def _append(self, buf: _TxBuffer, ids: np.ndarray) -> None:
        pos = 0
        while pos < len(ids):
            if buf.count == 0:
                buf.since = self.clock()
            take = min(len(ids) - pos, len(buf.ids) - buf.count)
            buf.ids[buf.count : buf.count + take] = ids[pos : pos + take]
            buf.count += take
            pos += take
            if buf.count >= BURST:
                self._flush(buf)

    def _flush_all(self, force: bool) -> None:
        now = self.clock()
        for buf in self._txbufs.values():
            if buf.count and (force or now - buf.since >= DRAIN_NS):
                self._flush(buf)

    def _private(self, port: Port, ids: np.ndarray, n: int) -> int:
        """Copy-on-write before a VLAN edit: shared buffers of ``ids[:n]`` get private copies.

        Returns how many are kept (``ids[:m]``); frames left without a buffer are
        counted as ``nombuf`` on ``port``.
        """
        dp = self.dp
        m = int(unshare(dp.pool_ctrl, dp.pool_slots, dp.refcnt, dp.meta, dp.data, dp.header, ids, n, self._one))
        if m < n:
            port.count_drop("nombuf", n - m)
        return m

    def _flush(self, buf: _TxBuffer) -> None:
        n = buf.count
        if n == 0:
            return
        buf.count = 0
        ids = buf.ids
        port = buf.port
        if buf.vlan.code != OP_NONE:
            n = self._private(port, ids, n)
            bad = int(apply_vlan(self.dp.data, self.dp.meta, ids, n, buf.vlan.code, buf.vlan.tci))
            if bad:
                port.count_error(bad)
        k = port.tx_burst(ids, n) if not port.closed else 0
        if k < n:
            port.count_drop("link_down" if port.closed else port.full_reason, n - k)
            self.dp.free(ids[k:n].copy(), n - k)
