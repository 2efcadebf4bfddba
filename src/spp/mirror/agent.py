"""``MirrorAgent``: a process's view of port mirroring (register, unregister, reconcile).

Two kinds of mirror:

* **shared** (built-in filters only: MACs, flow, VLAN ranges, snaplen, copy mode) —
  stored in the stack's shared registry (:mod:`spp.mirror.registry`), so it takes
  effect in whichever process receives or transmits on the source port: every agent
  whose :class:`~spp.ports.base.PortTable` has the source port open attaches it, opening
  the destination port in its own table.  Their statistics live in shared memory, so
  any process can read them.
* **local** (a Python burst filter, an application context or a lock shared with the
  application, or ports given as objects rather than ids) — those exist only in the
  registering process, so the mirror is attached to that process's port objects only.

Agents notice registry changes by the generation word ``header[H_MIRROR_GEN]`` and
new ports by the size of their port table: :meth:`MirrorAgent.poll` is a cheap check
(two integer reads) that reconciles only when something changed.  Call it between
bursts from the manager loop, or let :meth:`MirrorAgent.start` run it every
``interval`` seconds (2 ms by default) in a daemon thread.  Attaching and detaching is
a callback-list swap on the port, so it is safe while traffic flows.
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager
from typing import Any

from spp.mirror.engine import BurstFilter, PortMirror, stats_dict
from spp.mirror.filters import FlowMatch
from spp.mirror.registry import (
    MirrorError,
    MirrorSpec,
    SharedMirror,
    add_mirror,
    check_conflicts,
    generation,
    read_registry,
    remove_mirror,
    stats_table,
)
from spp.ports.base import Port, PortTable
from spp.runtime.dataplane import Dataplane

log = logging.getLogger(__name__)


class MirrorAgent:
    """Registers mirrors and keeps this process's ports in step with the shared registry."""

    def __init__(self, dp: Dataplane, ports: PortTable | None = None, *, interval: float = 0.002) -> None:
        self.dp = dp
        self.ports = ports if ports is not None else PortTable(dp)
        self.interval = interval
        self._local: dict[str, tuple[MirrorSpec, PortMirror]] = {}
        self._shared: dict[str, tuple[SharedMirror, PortMirror]] = {}
        self._seen = (-1, -1)
        #: Shared mirrors whose source is here but that cannot attach, and why.
        self.errors: dict[str, str] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- registration -------------------------------------------------------------

    def register(self, name: str, source: Port | str, destination: Port | str, direction: str = "both", *,
                 src_mac: str | None = None, dst_mac: str | None = None, vlan: str | None = None,
                 flow: FlowMatch | str | None = None, filter: BurstFilter | None = None, context: Any = None,
                 lock: AbstractContextManager[Any] | None = None, snaplen: int = 0, copy: str = "shallow",
                 shared: bool | None = None) -> MirrorSpec:
        """Mirror ``source``'s traffic in ``direction`` (``rx``, ``tx``, ``both``) to ``destination``.

        Ports are ids (``"ring:0"``) or port objects.  ``src_mac``/``dst_mac``/``vlan``
        (``"9,18-27"``)/``flow`` are the built-in filters; ``filter(dp, ids, context)``
        is a Python burst filter returning one boolean per id; ``lock`` (any context
        manager, e.g. a ``threading.Lock``) is held while the mirror reads packet data.
        ``snaplen > 0`` deep-copies only the first ``snaplen`` bytes.  ``shared`` defaults
        to True when only built-in filters and port ids are given.

        Raises :class:`MirrorError` for an unknown port, a port mirrored to itself, a
        second mirror of the same (source, destination) pair or a duplicate name.
        """
        local_only = filter is not None or lock is not None or context is not None or not (
            isinstance(source, str) and isinstance(destination, str))
        if shared is None:
            shared = not local_only
        if shared and local_only:
            raise MirrorError(f"mirror {name!r}: a Python filter, context, lock or port object exists only in "
                              "this process; register it with shared=False (a local mirror), or use port ids "
                              "and built-in filters for a shared one")
        src_id = source if isinstance(source, str) else source.id.base
        dst_id = destination if isinstance(destination, str) else destination.id.base
        spec = MirrorSpec.create(self.dp, name, src_id, dst_id, direction, src_mac=src_mac, dst_mac=dst_mac,
                                 vlan=vlan, flow=flow, snaplen=snaplen, copy=copy)
        with self._lock:
            if shared:
                add_mirror(self.dp, spec, local=[s for s, _ in self._local.values()])
                self.poll(force=True)
                return spec
            _, entries = read_registry(self.dp)
            check_conflicts(spec, [e.spec for e in entries] + [s for s, _ in self._local.values()])
            src_port = source if isinstance(source, Port) else self.ports.get(source)
            dst_port = destination if isinstance(destination, Port) else self.ports.get(destination)
            pm = PortMirror(self.dp, name, src_port, dst_port, spec.direction, match=spec.match, filter=filter,
                            context=context, lock=lock, snaplen=spec.snaplen, copy=spec.copy)
            pm.attach()
            self._local[name] = (spec, pm)
            return spec

    def unregister(self, name: str) -> None:
        """Remove mirror ``name`` (local, or shared from every process); :class:`MirrorError` if unknown."""
        with self._lock:
            local = self._local.pop(name, None)
            if local is not None:
                local[1].detach()
                return
            remove_mirror(self.dp, name)
            self.poll(force=True)

    # -- reconciliation -------------------------------------------------------------

    def poll(self, *, force: bool = False) -> bool:
        """Attach/detach shared mirrors if the registry or the port table changed; True if it did."""
        seen = (generation(self.dp), len(self.ports.all()))
        if seen == self._seen and not force:
            return False
        with self._lock:
            gen, entries = read_registry(self.dp)
            want: dict[str, tuple[SharedMirror, Port]] = {}
            for e in entries:
                src = self.ports.find(e.spec.source)
                if src is not None and not src.closed:
                    want[e.spec.name] = (e, src)
            for name, (entry, pm) in list(self._shared.items()):
                w = want.get(name)
                if w is None or w[0] != entry or w[1] is not pm.source or pm.destination.closed:
                    pm.detach()
                    del self._shared[name]
            for name, (entry, src) in want.items():
                if name in self._shared:
                    continue
                try:
                    dst = self.ports.get(entry.spec.destination)
                except (ValueError, OSError) as e:
                    log.warning("mirror %s: cannot open destination %s here: %s", name, entry.spec.destination, e)
                    self.errors[name] = f"cannot open destination {entry.spec.destination}: {e}"
                    continue
                self.errors.pop(name, None)
                s = entry.spec
                pm = PortMirror(self.dp, name, src, dst, s.direction, match=s.match, snaplen=s.snaplen, copy=s.copy,
                                stats=stats_table(self.dp)[entry.slot])
                pm.attach()
                self._shared[name] = (entry, pm)
            for name in [n for n in self.errors if n not in want]:
                del self.errors[name]
            self._seen = (gen, len(self.ports.all()))
            return True

    def start(self) -> None:
        """Run :meth:`poll` every ``interval`` seconds in a daemon thread until :meth:`close`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="spp-mirror-agent", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # keep reconciling; a bad entry must not stop the others
                log.exception("mirror agent: reconcile failed")

    def close(self) -> None:
        """Stop polling and detach every mirror from this process's ports (the registry is kept)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        with self._lock:
            for _, pm in [*self._local.values(), *self._shared.values()]:
                pm.detach()
            self._local.clear()
            self._shared.clear()
            self._seen = (-1, -1)

    # -- reporting ---------------------------------------------------------------------

    def attached(self) -> list[str]:
        """Names of the mirrors attached to ports of this process."""
        with self._lock:
            return sorted([*self._local, *self._shared])

    def mirrors(self) -> list[dict[str, Any]]:
        """Every shared mirror of the stack and this process's local ones, with statistics."""
        _, entries = read_registry(self.dp)
        table = stats_table(self.dp)
        out: list[dict[str, Any]] = [{**e.spec.to_json(), "shared": True, "stats": stats_dict(table[e.slot])}
                                     for e in entries]
        with self._lock:
            for spec, pm in self._local.values():
                out.append({**spec.to_json(), "shared": False, "stats": pm.stats_dict(), "error": pm.error})
        return out

    def stats(self, name: str) -> dict[str, int]:
        """``{packets, filtered, nombuf, full, errors}`` of mirror ``name``."""
        for m in self.mirrors():
            if m["name"] == name:
                result: dict[str, int] = m["stats"]
                return result
        raise MirrorError(f"no mirror {name!r}")

    def __enter__(self) -> MirrorAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
