"""Workers: one thread per core id, running the components assigned to it.

A worker follows a :class:`WorkerPlan`, an immutable description of its components
and their port attachments.  The control side builds a new plan and publishes it
(:meth:`Worker.publish`); the worker adopts it between calls of the compiled loop, so
it never sees half a change (validate, then swap).  The loop sends every buffered
frame before it returns, so nothing is in flight across a swap.

Every plan runs in the compiled loop (:func:`~spp.graph.loop.native_run_plan`, many
bursts per call): ports, components and port mirrors with a compiled kernel run it;
what users wrote in Python (a driver, a component, a callback such as a mirror's burst
filter) is called from the loop once per burst (:mod:`spp.graph.pyhook`).
:attr:`Worker.path` says whether the worker runs its plan and, if not, why.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from spp.graph.loop import native_run_plan
from spp.graph.native_plan import NativePlan
from spp.graph.plan import BURST, Attachment, ComponentPlan, WorkerPlan
from spp.ports.base import Port
from spp.runtime import pause, quiesce
from spp.runtime.dataplane import Dataplane
from spp.runtime.stats import REASON

__all__ = ["BURST", "Attachment", "ComponentPlan", "Worker", "WorkerPlan", "warm_up_native"]

log = logging.getLogger(__name__)

Clock = Callable[[], int]


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
    w._native = NativePlan(WorkerPlan())
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
        self._native: NativePlan | None = None
        self._why_not: str | None = None
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
        """``("native", None)`` while the compiled loop runs the plan, else ``("stopped", why)``:
        the plan could not be built (the worker then forwards nothing and says so)."""
        if self._native is not None or not self._plan.components or self._why_not is None:
            return ("native", None)
        return ("stopped", self._why_not)

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
        """Stop the thread (the loop sends every buffered frame before each return)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._thread.is_alive() and self._native is not None:
            self._native.close()
            self._native = None

    # -- worker side ----------------------------------------------------------

    def _adopt(self, plan: WorkerPlan) -> None:
        old, why = self._native, None
        try:
            self._native = NativePlan(plan) if plan.components else None
        except Exception as e:  # never let planning stop the thread: run nothing, and say why
            log.exception("worker on core %d: cannot build the plan", self.core)
            self._native, why = None, f"the plan could not be built: {e}"
        if old is not None:
            old.close()
        self._why_not = why
        self._adopted = plan.generation

    def _run(self) -> None:
        if self.pin:
            _pin(self.core)
        quiesce.register(self)
        checkpoint = pause.Checkpoint(self.dp)
        flush = lambda: None  # noqa: E731 (nothing is buffered between calls of the loop)
        current: WorkerPlan | None = None
        cb_gen = -1
        idle = 0
        try:
            while not self._stop.is_set():
                if checkpoint.requested():  # the primary stops the world (reclaiming a dead process's buffers)
                    checkpoint.hold(flush)
                plan = self._plan
                if plan is not current or Port.callback_generation != cb_gen:  # a callback change too:
                    cb_gen = Port.callback_generation  # a mirror attached or detached is a new plan
                    self._adopt(plan)
                    current = plan
                self.loops += 1
                got = self._run_native() if self._native is not None else 0
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
                                  npn.tx_off, npn.tabs, npn.tab_off,
                                  npn.cdrops, npn.txbuf, npn.txcnt, npn.iters, BURST, REASON["ring_full"],
                                  REASON["tx_full"], npn.rx_moff, npn.rx_mn, npn.tx_info, npn.rx_vlan, npn.mlist,
                                  npn.minfo, npn.mparams, npn.mvlan, npn.macc, npn.mtab, npn.flags, npn.vh, npn.rx_cbh,
                                  npn.pyh, npn.pyio, npn.pydst))
        npn.settle()
        return got
