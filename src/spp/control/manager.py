"""The manager of an spp-vf / spp-mirror process: one typed action per command.

Every front end (the TCP protocol to spp-ctl, tests, embedding code) goes through
these methods; :meth:`Manager.execute` is the thin adapter for the wire's text
commands and SPP's JSON replies.

Each action validates against the current state first and raises
:class:`ManagerError` (the message says what is wrong and what would work) without
changing anything; only then does it change the state and publish a new immutable
:class:`~spp.graph.worker.WorkerPlan` to every affected worker, so workers never
see half a change and traffic keeps flowing.

Rules (SPEC §3):

* component names are unique; a component runs on one core of ``-l`` other than
  the first (the master lcore); several components may share a core; one worker
  thread per core id, created on first use and stopped when its last component
  stops;
* a port is attached at most once per direction in the process; it may be tx of
  one component and rx of another; repeating ``port add`` with a VLAN option on the
  same component and direction updates the tag; port counts respect the
  component type's limits;
* ``port del`` of a ring leaves the frames already in it there; a port no
  component uses any more is closed;
* the classifier table is per process: per-VLAN tables (the untagged table is not
  VLAN 4095), ``default`` is a flag, any number of entries; an entry's port must be
  attached as tx of a classifier when the entry is added; an entry whose port is
  later detached stays in the table but is inactive (as if absent) until the port is
  attached again; every classifier uses the entries whose port is one of its tx
  ports;
* ``component stop`` detaches the component's ports and sends what it buffered;
  ``exit`` stops every worker, sends what they buffered, closes every port.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spp.components.base import COMPONENT_TYPES, Component, ComponentError
from spp.components.classifier import Classifier, build_table
from spp.components.vlan import NO_VLAN, VlanOp
from spp.control.validate import check_port
from spp.control.warmup import DataPathCompiler
from spp.graph.worker import Attachment, ComponentPlan, Worker, WorkerPlan
from spp.lang.base import VID_MAX, CommandError, Exit, Status, integer
from spp.lang.base import direction as lang_direction
from spp.lang.vf import Command, ComponentStart, ComponentStop, Direction, PortAdd, PortDel, ProcessType, parse
from spp.lang.wire import error as error_reply
from spp.lang.wire import success
from spp.ports.base import Port, PortError, PortId, PortTable, driver_types
from spp.runtime.dataplane import PORT_TYPES, Dataplane

log = logging.getLogger(__name__)

#: Component types each process type runs.
PROCESS_COMPONENTS: dict[str, tuple[str, ...]] = {
    "vf": ("forward", "merge", "classifier"),
    "mirror": ("mirror",),
}
#: Port types always listed in status; others only when in use (SPP's CLI knows only these).
STATUS_PORT_TYPES: tuple[str, ...] = ("phy", "vhost", "ring")
#: Seconds to wait for a worker to adopt a new plan (a first burst may compile code).
PUBLISH_TIMEOUT = 60.0


class ManagerError(ValueError):
    """A command cannot be applied in the current state; nothing was changed."""


def _checked(check: Callable[[], object]) -> None:
    """Run a :mod:`spp.lang` check for a caller of the Python API; its error becomes a :class:`ManagerError`."""
    try:
        check()
    except CommandError as e:
        raise ManagerError(str(e)) from None


def _component_types() -> dict[str, Callable[[Dataplane, str, int], Component]]:
    import spp.components.classifier
    import spp.components.forward  # registers forward and merge

    try:
        import spp.components.mirror  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "spp.components.mirror":
            raise
    return COMPONENT_TYPES


@dataclass
class _Attach:
    port: PortId
    vlan: VlanOp = NO_VLAN


@dataclass
class _Comp:
    component: Component
    ctype: str
    core: int
    rx: list[_Attach] = field(default_factory=list)
    tx: list[_Attach] = field(default_factory=list)

    def ports(self, direction: Direction) -> list[_Attach]:
        return self.rx if direction == "rx" else self.tx


class Manager:
    """State and actions of one secondary process (see the module docstring).

    ``cores`` is the ``-l`` list (its first core is the master lcore and runs no
    component; default: every CPU of this host).  ``options`` are process options
    components may read (``options["copy"]``: the mirror's ``shallow``/``deep``).
    ``pin`` pins worker threads to their core when the host has it.
    The data path is compiled in a background thread (:mod:`spp.control.warmup`); with
    ``wait_compiled`` (the default) the constructor waits for it, without, commands are
    taken at once, status says ``"state": "compiling"``, and the plans of commands
    given meanwhile reach the workers when it is ready.
    Thread-safe: actions are serialised by a lock.
    """

    def __init__(self, dp: Dataplane, *, process: ProcessType = "vf", client_id: int = 1,
                 cores: Sequence[int] | None = None, options: Mapping[str, Any] | None = None,
                 pin: bool = True, wait_compiled: bool = True) -> None:
        if process not in PROCESS_COMPONENTS:
            raise ValueError(f"process type {process!r}: expected vf or mirror")
        self.dp = dp
        self.process: ProcessType = process
        self.client_id = client_id
        self.cores = list(cores) if cores is not None else sorted(os.sched_getaffinity(0))
        if not self.cores:
            raise ValueError("the core list is empty: give at least the master lcore (e.g. -l 0,1)")
        self.options: dict[str, Any] = dict(options or {})
        self.options.setdefault("copy", "shallow")
        self.pin = pin
        self.ports = PortTable(dp)
        self.closed = False
        self._provided: dict[str, Port] = {}
        self._comps: dict[str, _Comp] = {}
        self._table: dict[tuple[int | None, str | None], PortId] = {}
        self._workers: dict[int, Worker] = {}
        self._generation = 0
        self._lock = threading.RLock()
        self._pending: set[int] = set()  # cores whose plan changed while compiling
        self.compiler = DataPathCompiler(dp, self._compiled)
        self.compiler.start()
        if wait_compiled:
            self.compiler.wait()

    @property
    def master_lcore(self) -> int:
        return self.cores[0]

    # -- the wire adapter ------------------------------------------------------

    def execute(self, line: str) -> dict[str, Any]:
        """Parse and apply one text command; return SPP's JSON reply (never raises for bad input)."""
        try:
            cmd = parse(line, self.process)
            info = self.apply(cmd)
        except (CommandError, ManagerError) as e:
            return error_reply(str(e))
        return success() if info is None else success(info=info)

    def apply(self, cmd: Command) -> dict[str, Any] | None:
        """Apply a parsed command; ``status`` returns its ``info`` object."""
        if isinstance(cmd, Status):
            return self.status()
        if isinstance(cmd, Exit):
            self.exit()
        elif isinstance(cmd, ComponentStart):
            self.start_component(cmd.name, cmd.core, cmd.ctype)
        elif isinstance(cmd, ComponentStop):
            self.stop_component(cmd.name)
        elif isinstance(cmd, PortAdd):
            self.attach_port(cmd.port, cmd.direction, cmd.name, cmd.vlan)
        elif isinstance(cmd, PortDel):
            self.detach_port(cmd.port, cmd.direction, cmd.name)
        elif cmd.action == "add":
            self.classifier_add(cmd.vlan, cmd.mac, cmd.port)
        else:
            self.classifier_del(cmd.vlan, cmd.mac, cmd.port)
        return None

    # -- ports supplied by the embedder -----------------------------------------

    def provide_port(self, port: Port) -> None:
        """Use ``port`` (e.g. a test's MemoryPort) whenever a command names its id."""
        with self._lock:
            key = str(port.id)
            if key in self._provided or self.ports.find(key) is not None:
                raise ManagerError(f"port {key} is already open in this process")
            self._provided[key] = port

    def port(self, pid: PortId | str) -> Port:
        """The open port object for ``pid`` (opening it if needed)."""
        pid = pid if isinstance(pid, PortId) else PortId.parse(pid)
        provided = self._provided.get(str(pid))
        if provided is not None:
            return provided
        try:
            return self.ports.get(pid)
        except (PortError, ValueError) as e:
            raise ManagerError(f"cannot open port {pid}: {e}") from None

    # -- actions -------------------------------------------------------------------

    def start_component(self, name: str, core: int, ctype: str) -> None:
        """``component start NAME CORE_ID TYPE``."""
        with self._lock:
            self._check_open()
            allowed = PROCESS_COMPONENTS[self.process]
            if ctype not in allowed:
                raise ManagerError(f"unknown component type {ctype!r}: spp-{self.process} runs "
                                   f"{' or '.join(allowed)}")
            if name in self._comps:
                raise ManagerError(f"component {name!r} already exists (on core {self._comps[name].core}): "
                                   "pick another name or stop it first")
            self._check_core(core)
            factory = _component_types().get(ctype)
            if factory is None:
                raise ManagerError(f"component type {ctype!r} is not available in this installation")
            try:
                comp = factory(self.dp, name, core)
            except (ComponentError, ValueError) as e:
                raise ManagerError(f"cannot start {ctype} {name!r}: {e}") from None
            if hasattr(comp, "copy_mode"):  # the mirror reads the process's copy mode
                try:
                    comp.copy_mode = self.options["copy"]
                except (ComponentError, ValueError) as e:
                    raise ManagerError(f"cannot start {ctype} {name!r}: {e}") from None
            self._comps[name] = _Comp(comp, ctype, core)
            self._publish({core})
            log.info("component %s (%s) started on core %d", name, ctype, core)

    def stop_component(self, name: str) -> None:
        """``component stop NAME``: detach its ports, send what it buffered, forget it."""
        with self._lock:
            self._check_open()
            c = self._get(name)
            del self._comps[name]
            self._publish({c.core})
            for a in (*c.rx, *c.tx):
                self._release(a.port)
            log.info("component %s stopped", name)

    def attach_port(self, pid: PortId | str, direction: Direction, name: str, vlan: VlanOp | None = None) -> None:
        """``port add RES_UID {rx|tx} NAME [add_vlantag VID PCP | del_vlantag]``."""
        pid = self._pid(pid)
        with self._lock:
            self._check_open()
            self._check_resource(pid)  # a bad resource id is the first thing to report
            c = self._get(name)
            _checked(lambda: lang_direction(direction))
            if vlan is not None and self.process != "vf":
                raise ManagerError(f"spp-{self.process} has no VLAN options: expected port add RES_UID "
                                   "{rx|tx} NAME")
            owner = self._owner(pid, direction)
            if owner is not None:
                if owner is c and vlan is not None:
                    for a in c.ports(direction):
                        if a.port == pid:
                            a.vlan = vlan
                    self._publish({c.core})
                    return
                raise ManagerError(f"port {pid} is already attached as {direction} of {owner.component.name!r}: "
                                   f"a port is attached once per direction (port del {pid} {direction} "
                                   f"{owner.component.name} first)")
            n_rx, n_tx = len(c.rx) + (direction == "rx"), len(c.tx) + (direction == "tx")
            try:
                c.component.check_ports(n_rx, n_tx)
            except ComponentError as e:
                raise ManagerError(f"cannot attach {pid} as {direction}: {e}") from None
            self.port(pid)  # open it now: a failure leaves the state unchanged
            c.ports(direction).append(_Attach(pid, vlan or NO_VLAN))
            self._publish({c.core})

    def detach_port(self, pid: PortId | str, direction: Direction, name: str) -> None:
        """``port del RES_UID {rx|tx} NAME``; frames waiting in a ring stay there."""
        pid = self._pid(pid)
        with self._lock:
            self._check_open()
            c = self._get(name)
            attached = c.ports(direction)
            idx = next((i for i, a in enumerate(attached) if a.port == pid), None)
            if idx is None:
                have = ", ".join(str(a.port) for a in attached) or "none"
                raise ManagerError(f"port {pid} is not attached as {direction} of {name!r} "
                                   f"({direction} ports: {have})")
            del attached[idx]
            self._publish({c.core})
            self._release(pid)

    def classifier_add(self, vlan: int | None, mac: str | None, pid: PortId | str) -> None:
        """``classifier_table add``: ``vlan`` None is the untagged table, ``mac`` None is ``default``."""
        pid = self._pid(pid)
        with self._lock:
            self._check_open()
            self._check_vf()
            key = self._table_key(vlan, mac)
            value = _value(vlan, mac)
            if not any(c.ctype == "classifier" and any(a.port == pid for a in c.tx) for c in self._comps.values()):
                raise ManagerError(f"port {pid} is not attached as tx of a classifier: attach it first "
                                   f"(port add {pid} tx NAME)")
            if key in self._table:
                raise ManagerError(f"classifier_table entry {value} already exists (port {self._table[key]}): "
                                   "delete it first")
            self._table[key] = pid
            self._publish_classifiers()

    def classifier_del(self, vlan: int | None, mac: str | None, pid: PortId | str) -> None:
        """``classifier_table del``: the entry must exist with this port."""
        pid = self._pid(pid)
        with self._lock:
            self._check_open()
            self._check_vf()
            key = self._table_key(vlan, mac)
            value = _value(vlan, mac)
            have = self._table.get(key)
            if have is None:
                raise ManagerError(f"no classifier_table entry {value}: nothing to delete")
            if have != pid:
                raise ManagerError(f"classifier_table entry {value} is on port {have}, not {pid}")
            del self._table[key]
            self._publish_classifiers()

    def status(self) -> dict[str, Any]:
        """SPP's ``info`` object of the ``status`` reply (see docs/commands.md)."""
        with self._lock:
            used: dict[str, set[int]] = {}
            for c in self._comps.values():
                for a in (*c.rx, *c.tx):
                    used.setdefault(a.port.ptype, set()).add(a.port.index)
            info: dict[str, Any] = {"client-id": self.client_id}
            for t in STATUS_PORT_TYPES:
                info[t] = [str(i) for i in sorted(used.get(t, ()))]
            for t in PORT_TYPES:
                if t not in STATUS_PORT_TYPES and used.get(t):
                    info[t] = [str(i) for i in sorted(used[t])]
            info["master-lcore"] = self.master_lcore
            cores: list[dict[str, Any]] = []
            for core in self.cores[1:]:
                here = [c for c in self._comps.values() if c.core == core]
                if not here:
                    cores.append({"core": core, "type": "unuse"})
                for c in here:
                    cores.append({
                        "core": core,
                        "name": c.component.name,
                        "type": c.ctype,
                        "rx_port": [self._port_status(a) for a in c.rx],
                        "tx_port": [self._port_status(a) for a in c.tx],
                        "stats": c.component.stats_dict(),
                    })
            info["core"] = cores
            if self.process == "vf":
                info["classifier_table"] = [
                    {"type": "mac" if vlan is None else "vlan", "value": _value(vlan, mac), "port": str(pid)}
                    for (vlan, mac), pid in self._table.items()
                ]
            # spp's own addition: which data path each worker runs (compiled, or Python and why)
            info["workers"] = [{"core": core, "native": w.path[0] == "native", "python_why": w.path[1]}
                               for core, w in sorted(self._workers.items())]
            info["state"] = self.compiler.state  # spp's addition after SPP's keys: "compiling" or "ready"
            return info

    def exit(self) -> None:
        """Stop every worker (sending what they buffered), close every port.  Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            workers, self._workers = list(self._workers.values()), {}
            for w in workers:
                w.stop()
                if w.error is not None:
                    log.error("worker on core %d had failed: %s", w.core, w.error)
            self._comps.clear()
            self.ports.close_all()
            for p in self._provided.values():
                p.close()
            log.info("spp-%s %d: workers stopped, ports closed", self.process, self.client_id)

    # -- helpers -------------------------------------------------------------------

    def components(self) -> dict[str, Component]:
        """The running components by name (their base objects; read-only use)."""
        with self._lock:
            return {n: c.component for n, c in self._comps.items()}

    def workers(self) -> dict[int, Worker]:
        with self._lock:
            return dict(self._workers)

    def _check_open(self) -> None:
        if self.closed:
            raise ManagerError(f"spp-{self.process} {self.client_id} is exiting: no more commands")

    def _check_vf(self) -> None:
        if self.process != "vf":
            raise ManagerError(f"spp-{self.process} has no classifier_table")

    def _check_core(self, core: int) -> None:
        usable = self.cores[1:]
        listed = ", ".join(map(str, usable)) or "none"
        if core == self.master_lcore:
            raise ManagerError(f"core {core} is the master lcore and cannot run components: use one of {listed}")
        if core not in usable:
            raise ManagerError(f"core {core} is not in this process's core list (-l): use one of {listed}")

    def _pid(self, pid: PortId | str) -> PortId:
        if isinstance(pid, PortId):
            return pid
        try:
            return PortId.parse(pid)
        except PortError as e:
            raise ManagerError(str(e)) from None

    def _check_resource(self, pid: PortId) -> None:
        """Raise the error opening ``pid`` would raise for a bad id, without opening it.

        Checks the type has a driver here (``memif`` is refused with its hint) and the
        index is in the stack's range; ports already open or provided pass.
        """
        if str(pid) in self._provided or self.ports.find(pid) is not None:
            return
        try:
            check_port(self.dp, pid)
        except ValueError as e:
            raise ManagerError(f"cannot open port {pid}: {e}") from None
        if pid.ptype not in driver_types():
            self.port(pid)  # no driver: raises the driver table's explanation, opens nothing
        try:
            self.dp.port_slot(pid.ptype, pid.index)
        except ValueError as e:
            raise ManagerError(f"cannot open port {pid}: {e}") from None

    def _get(self, name: str) -> _Comp:
        c = self._comps.get(name)
        if c is None:
            known = ", ".join(sorted(self._comps)) or "none"
            raise ManagerError(f"no component named {name!r} (components: {known})")
        return c

    def _owner(self, pid: PortId, direction: Direction) -> _Comp | None:
        for c in self._comps.values():
            if any(a.port == pid for a in c.ports(direction)):
                return c
        return None

    def _table_key(self, vlan: int | None, mac: str | None) -> tuple[int | None, str | None]:
        if vlan is not None:
            _checked(lambda: integer(vlan, "VLAN id", 0, VID_MAX))
        return (vlan, None if mac is None else mac.lower())

    def _release(self, pid: PortId) -> None:
        """Close ``pid`` if no component uses it any more (a ring keeps its frames)."""
        if self._owner(pid, "rx") is None and self._owner(pid, "tx") is None and str(pid) not in self._provided:
            self.ports.close(pid)

    def _port_status(self, a: _Attach) -> dict[str, Any]:
        return {"port": str(a.port), "vlan": a.vlan.to_json(), "stats": self.port(a.port).stats_dict()}

    def _worker(self, core: int) -> Worker:
        w = self._workers.get(core)
        if w is None or not w.alive:
            w = Worker(self.dp, core, pin=self.pin)
            w.start()
            self._workers[core] = w
        return w

    def _component_plan(self, c: _Comp) -> ComponentPlan:
        rx = tuple(Attachment(self.port(a.port), a.vlan) for a in c.rx)
        tx = tuple(Attachment(self.port(a.port), a.vlan) for a in c.tx)
        comp = c.component
        if isinstance(comp, Classifier):
            index = {a.port: i for i, a in enumerate(c.tx)}
            entries = [(vlan, -1 if mac is None else int(mac.replace(":", ""), 16), index[pid])
                       for (vlan, mac), pid in self._table.items() if pid in index]
            comp = comp.with_table(build_table(entries))
        return ComponentPlan(comp, rx, tx)

    def _compiled(self) -> None:
        """The data path is ready: hand the workers the plans of the commands given meanwhile."""
        with self._lock:
            pending, self._pending = self._pending, set()
            if not self.closed:
                self._publish(pending)

    def _publish(self, cores: set[int]) -> None:
        """Build and hand a new plan to the worker of each of ``cores`` (once the data path is compiled)."""
        if not self.compiler.ready:
            self._pending |= cores
            return
        for core in sorted(cores):
            comps = [c for c in self._comps.values() if c.core == core]
            if not comps:
                w = self._workers.pop(core, None)
                if w is not None:
                    w.stop()
                continue
            self._generation += 1
            plan = WorkerPlan(tuple(self._component_plan(c) for c in comps), self._generation)
            try:
                self._worker(core).publish(plan, timeout=PUBLISH_TIMEOUT)
            except TimeoutError:  # the worker adopts it later; the state is already the new one
                log.error("worker on core %d did not adopt plan %d within %.0f s", core, plan.generation,
                          PUBLISH_TIMEOUT)

    def _publish_classifiers(self) -> None:
        self._publish({c.core for c in self._comps.values() if c.ctype == "classifier"})


def _value(vlan: int | None, mac: str | None) -> str:
    m = "default" if mac is None else mac
    return m if vlan is None else f"{vlan}/{m}"
