"""Compile the data path without making anyone wait for it.

A cold compile of the worker loop (empty numba cache) takes about a minute; loading
it from the cache about a second.  A secondary therefore compiles in a background
thread (:class:`DataPathCompiler`) while it already talks to spp-ctl: its status says
``"state": "compiling"`` until the loop is ready, and the manager hands the plans of
commands given meanwhile to its workers once it is (frames wait in their rings or
in the kernel's socket buffers meanwhile, counted by the port if those overflow).

Processes that start at the same time compile one after the other (a lock file in
the cache directory): the second loads what the first wrote instead of compiling
the same code again on the same cores.

``python3 -m spp.control.warmup`` fills the cache once (``scripts/setup.sh`` runs
it), so a newcomer's first secondary finds it warm.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from spp import _jitcache
from spp.runtime.dataplane import Dataplane

log = logging.getLogger(__name__)

COMPILING = "compiling"
READY = "ready"
_LOCK = "spp-compile.lock"


#: Longest wait for another process's compile before compiling anyway (a stopped process keeps the lock).
LOCK_WAIT = 600.0


@contextlib.contextmanager
def compile_lock(wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the cache's compile lock (one compiling process at a time); a no-op where it cannot be had."""
    path = _jitcache.stamp_dir() / _LOCK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:  # a read-only cache: nothing to share, nothing to serialise
        yield
        return
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("another process has been compiling for %.0f s; compiling here too", wait)
                    break
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def compile_data_path(dp: Dataplane) -> None:
    """Compile (or load from the cache) every function the workers run, now.

    Besides the warm-ups of the worker loop and the classifier, one frame is sent
    through each kind of plan a worker may run (forward over null and ring ports, the
    mirror component, VLAN add/del), on a private data plane, so whichever path each
    takes (compiled loop or Python burst loop) is compiled here and not in a worker's
    first burst.  ``dp`` only gives the array types; nothing is written to it.
    """
    from spp.components.classifier import warm_up
    from spp.graph.worker import warm_up_native

    global _compiled
    if _compiled:  # once per process: what was compiled stays loaded
        return
    with compile_lock():
        warm_up(dp)
        warm_up_native(dp)
        _exercise()
    _compiled = True


_compiled = False


def _exercise(timeout: float = 600.0) -> None:
    """One frame through each kind of plan, on a private data plane (see :func:`compile_data_path`)."""
    from spp.components.forward import Forward
    from spp.components.mirror import Mirror
    from spp.components.vlan import VlanOp
    from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
    from spp.ports.base import PortTable
    from spp.runtime.dataplane import Layout
    from spp.runtime.stats import TX_PACKETS
    from spp.testing import unique_prefix, wait_for

    dp = Dataplane.create(unique_prefix("spp-warmup"), Layout(n_bufs=1024, n_rings=4, ring_size=64))
    dp.seg.path.unlink(missing_ok=True)  # nothing else attaches; no file is left behind if we are killed
    ports = PortTable(dp)
    try:
        a = {name: Attachment(ports.get(name)) for name in ("nullpmd:0", "nullpmd:1", "nullpmd:2", "ring:0",
                                                             "ring:1", "ring:2")}

        def fwd(src: str, dst: str, vlan: VlanOp | None = None) -> ComponentPlan:
            tx = a[dst] if vlan is None else Attachment(a[dst].port, vlan)
            return ComponentPlan(Forward(dp, f"{src}>{dst}", 0), (a[src],), (tx,))

        mirror = ComponentPlan(Mirror(dp, "mirror", 0), (a["ring:0"],), (a["ring:1"], a["ring:2"]))
        plans = [
            (fwd("nullpmd:0", "ring:0"), fwd("ring:0", "nullpmd:1")),
            (fwd("nullpmd:0", "ring:0"), mirror, fwd("ring:1", "nullpmd:1"), fwd("ring:2", "nullpmd:2")),
            (fwd("nullpmd:0", "ring:0", VlanOp("add", 1, 0)), fwd("ring:0", "nullpmd:1", VlanOp("del"))),
        ]
        sink = a["nullpmd:1"].port.stats
        for i, comps in enumerate(plans):
            w = Worker(dp, 0, pin=False)
            w.start()
            try:
                before = int(sink[TX_PACKETS])
                w.publish(WorkerPlan(comps, 2 * i + 1), timeout=timeout)
                wait_for(lambda b=before, w=w: int(sink[TX_PACKETS]) > b or w.error is not None,  # type: ignore[misc]
                         timeout=timeout, interval=0.01, message="a frame through the warm-up plan")
                w.publish(WorkerPlan((), 2 * i + 2), timeout=timeout)
            finally:
                w.stop()
            if w.error is not None:
                raise RuntimeError(f"warm-up plan {i} failed: {w.error!r}")
    finally:
        ports.close_all()
        dp.close()


class DataPathCompiler:
    """Runs :func:`compile_data_path` once in a daemon thread; ``on_ready`` is called when it is done.

    :attr:`ready` turns true just before ``on_ready`` runs.

    ``on_ready`` also runs if the compile failed (the error is logged and kept in
    :attr:`error`): workers then compile on first use, as without a warm-up.
    """

    def __init__(self, dp: Dataplane, on_ready: Callable[[], None] | None = None) -> None:
        self.dp = dp
        self.on_ready = on_ready
        self.error: BaseException | None = None
        self.seconds: float | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spp-compile", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    @property
    def state(self) -> str:
        return READY if self._done.is_set() else COMPILING

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the data path is ready; False on timeout."""
        return self._done.wait(timeout)

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            compile_data_path(self.dp)
        except Exception as e:  # report; workers compile on first use instead
            self.error = e
            log.exception("compiling the data path failed; workers compile on first use")
        self.seconds = time.monotonic() - t0
        if self.seconds > 2:
            log.info("data path compiled in %.1f s", self.seconds)
        self._done.set()  # first: what comes after publishes directly, what came before is in on_ready's hands
        try:
            if self.on_ready is not None:
                self.on_ready()
        except Exception:
            log.exception("adopting the plans given while compiling failed")


def is_cached() -> bool:
    """True if numba's cache holds an index for the worker loop (a warm start is likely)."""
    from spp.graph import loop as native_loop

    src = Path(native_loop.__file__)
    return any(d.glob(f"{src.stem}.native_run_plan-*.nbi") for d in _jitcache.cache_dirs_for(src.parent))


def fill_cache(echo: Callable[[str], None] = print) -> float:
    """Compile the data path into numba's cache in a private data plane; return the seconds it took."""
    from spp.runtime.dataplane import Layout
    from spp.testing import unique_prefix

    if not is_cached():
        echo("compiling the data plane (about a minute, once)...")
    t0 = time.monotonic()
    dp = Dataplane.create(unique_prefix("warmup"), Layout(n_bufs=64, n_rings=1, ring_size=64))
    try:
        compile_data_path(dp)
    finally:
        dp.close()
    took = time.monotonic() - t0
    echo(f"data plane compiled ({took:.1f} s)" if took > 5 else f"data plane already compiled ({took:.1f} s)")
    return took


def main() -> int:
    """``python3 -m spp.control.warmup``: fill the compile cache."""
    try:
        fill_cache(lambda s: print(s, flush=True))
    except Exception as e:  # a broken install: say so, setup goes on (processes compile on first use)
        print(f"could not compile the data plane now ({type(e).__name__}: {e}); "
              "spp's processes will compile it on their first start", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
