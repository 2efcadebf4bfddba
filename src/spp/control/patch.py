"""SPP's patch panel (spp_nfv and the primary's forwarder): ports, patches, forward/stop.

A patch ``SRC DST`` sends every frame received on SRC to DST.  Patches run on the
ordinary worker loop: each patch is a ``forward`` component (1 rx, 1 tx) in one
:class:`~spp.graph.worker.WorkerPlan`, so the compiled loop runs them where it
can and no data-path code lives here.  A change (patch, reset, forward, stop)
builds a new plan and publishes it; the worker swaps plans between bursts and
sends what it buffered for a destination that went away, so a change while
forwarding loses no frame.  The component of a source is kept across plans (its
drop counters and tx buffer stay).

Rules (SPP 19.11): ``phy`` ports of the stack are usable without ``add``; ring,
vhost, tap, pcap and nullpmd need ``add``; a source has one destination (a new
patch from it replaces the old one), a destination may have several sources;
``del`` refuses a port that is patched; ``forward`` needs at least one patch.
Every action validates first and raises :class:`PatchError` without changing
anything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from spp.components.forward import Forward
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.ports.base import Port, PortError, PortId, PortTable, driver_types
from spp.runtime.dataplane import Dataplane

log = logging.getLogger(__name__)

#: Seconds to wait for the worker to adopt a plan (a first burst may compile code).
PUBLISH_TIMEOUT = 60.0


class PatchError(ValueError):
    """A patch panel command cannot be applied now; nothing was changed."""


class PatchPanel:
    """Ports, patches and the forwarding state of one process; thread-safe.

    ``core`` is the core its one worker runs on; ``owner`` names the process in
    messages (``spp-nfv 1``, ``spp-primary``).  ``owned`` lists the ports usable
    without ``add`` (default: the stack's phy ports; the primary adds the rings it
    marked in use).
    """

    def __init__(self, dp: Dataplane, core: int, *, owner: str = "spp-nfv", pin: bool = True,
                 ports: PortTable | None = None, owned: Callable[[], list[PortId]] | None = None) -> None:
        self.dp = dp
        self.core = core
        self.owner = owner
        self.pin = pin
        self.ports = ports if ports is not None else PortTable(dp)
        self.added: list[PortId] = []
        self.patches: dict[PortId, PortId] = {}
        self.forwarding = False
        self.closed = False
        self.owned = owned or self.phy_ports
        self._comps: dict[PortId, Forward] = {}
        self._worker: Worker | None = None
        self._generation = 0
        self._lock = threading.RLock()

    # -- queries -----------------------------------------------------------------

    def phy_ports(self) -> list[PortId]:
        """The stack's phy ports (from the primary's ``--phy``)."""
        return [PortId("phy", i) for i in range(len(self.dp.config().get("phy", [])))]

    def usable(self, pid: PortId) -> bool:
        return pid in self.added or PortId(pid.ptype, pid.index) in self.owned()

    def port_list(self) -> list[PortId]:
        """Ports in SPP's status order: phy (and other owned ports) first, then the added ones in order."""
        return [*self.owned(), *self.added]

    def patched(self, pid: PortId) -> list[str]:
        """The patches using ``pid``, as ``SRC -> DST``."""
        with self._lock:
            return [f"{s} -> {d}" for s, d in self.patches.items() if pid in (s, d)]

    def status(self) -> dict[str, Any]:
        """``status``/``ports``/``patches`` of SPP's nfv status (see docs/commands.md)."""
        with self._lock:
            return {
                "status": "running" if self.forwarding else "idling",
                "ports": [str(p) for p in self.port_list()],
                "patches": [{"src": str(s), "dst": str(d)} for s, d in self.patches.items()],
            }

    def stats(self) -> dict[str, Any]:
        """Counters of every open port and of each patch's forward component."""
        with self._lock:
            return {
                "ports": {str(p.id): p.stats_dict() for p in self.ports.all()},
                "patches": {str(s): c.stats_dict() for s, c in self._comps.items()},
            }

    # -- actions -------------------------------------------------------------------

    def add_port(self, pid: PortId) -> None:
        """``add PORT``: open a ring/vhost/tap/pcap/nullpmd port for patches."""
        with self._lock:
            self._check_open()
            if pid.ptype == "phy":
                raise PatchError(f"{pid} needs no add: phy ports of the stack are always usable "
                                 f"(phy ports: {_listing(self.phy_ports())})")
            if pid in self.added:
                raise PatchError(f"{pid} is already added (ports: {_listing(self.port_list())})")
            if pid.ptype not in driver_types():
                raise PatchError(f"cannot add {pid}: no {pid.ptype} driver in this installation "
                                 f"(available: {', '.join(driver_types())})")
            try:
                self.dp.port_slot(pid.ptype, pid.index)
                self.ports.get(pid)  # open it now: a failure leaves the state unchanged
            except (PortError, ValueError, OSError) as e:
                raise PatchError(f"cannot add {pid}: {e}") from None
            self.added.append(pid)

    def del_port(self, pid: PortId) -> None:
        """``del PORT``: close an added port that no patch uses."""
        with self._lock:
            self._check_open()
            if pid.ptype == "phy":
                raise PatchError(f"{pid} cannot be deleted: phy ports belong to the stack")
            if pid not in self.added:
                raise PatchError(f"{pid} is not added (added ports: {_listing(self.added)})")
            users = self.patched(pid)
            if users:
                raise PatchError(f"{pid} is patched ({', '.join(users)}): patch reset first")
            self.added.remove(pid)
            self.ports.close(pid)

    def patch(self, src: PortId, dst: PortId) -> None:
        """``patch SRC DST`` (replaces SRC's earlier destination)."""
        with self._lock:
            self._check_open()
            for what, pid in (("source", src), ("destination", dst)):
                if not self.usable(pid):
                    hint = (f"the stack has phy ports {_listing(self.phy_ports())}" if pid.ptype == "phy"
                            else f"add {pid} first")
                    raise PatchError(f"patch {what} {pid} is not a port of {self.owner}: {hint}")
            for pid in (src, dst):
                self._open(pid)
            self.patches[src] = dst
            self._publish()

    def reset(self) -> None:
        """``patch reset``: remove every patch (forwarding stays on, with nothing to forward)."""
        with self._lock:
            self._check_open()
            self.patches.clear()
            self._publish()

    def forward(self) -> None:
        """``forward``: start forwarding every patch."""
        with self._lock:
            self._check_open()
            if not self.patches:
                raise PatchError("nothing to forward: no patch (patch SRC DST first)")
            self.forwarding = True
            self._publish()

    def stop(self) -> None:
        """``stop``: stop forwarding; buffered frames are sent, ports stay open."""
        with self._lock:
            self._check_open()
            self.forwarding = False
            self._publish()

    def close(self) -> None:
        """Stop the worker (sending what it buffered), close every port.  Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.forwarding = False
            if self._worker is not None:
                self._worker.stop()
                if self._worker.error is not None:
                    log.error("%s: worker had failed: %s", self.owner, self._worker.error)
                self._worker = None
            self.ports.close_all()

    # -- helpers -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise PatchError(f"{self.owner} is exiting: no more commands")

    def _open(self, pid: PortId) -> Port:
        try:
            return self.ports.get(pid)
        except (PortError, ValueError, OSError) as e:
            raise PatchError(f"cannot open {pid}: {e}") from None

    def _publish(self) -> None:
        """Hand the worker the plan of the current patches (none while stopped)."""
        active = self.patches if self.forwarding else {}
        comps: list[ComponentPlan] = []
        for src, dst in active.items():
            comp = self._comps.get(src)
            if comp is None:
                comp = self._comps[src] = Forward(self.dp, f"patch-{src}", self.core)
            comps.append(ComponentPlan(comp, (Attachment(self._open(src)),), (Attachment(self._open(dst)),)))
        self._generation += 1
        plan = WorkerPlan(tuple(comps), self._generation)
        if self._worker is None or not self._worker.alive:
            if not comps:
                return
            self._worker = Worker(self.dp, self.core, pin=self.pin)
            self._worker.start()
        try:
            self._worker.publish(plan, timeout=PUBLISH_TIMEOUT)
        except TimeoutError:
            log.error("%s: worker did not adopt plan %d within %.0f s", self.owner, plan.generation, PUBLISH_TIMEOUT)


def _listing(pids: list[PortId]) -> str:
    return ", ".join(map(str, pids)) or "none"
